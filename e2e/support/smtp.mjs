// An SMTP server in the test process (smtp-server), so the tests read the mails authgql really sends:
// plain SMTP on loopback, no AUTH, no STARTTLS (the server sends in clear only to a loopback host).
// Every message is kept whole and parsed (mailparser); waitFor() resolves with the first that matches.
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

/**
 * Starts the SMTP server on 127.0.0.1 and a free port. Returns { url, messages, waitFor, close }:
 * pass url to the server as SMTP_URL; each message is
 * { from, to: [addresses of the envelope], raw, subject, text, html, contentType, headers, parsed }.
 */
export async function startSmtpServer() {
  const messages = [];
  const waiters = new Set();

  function deliver(message) {
    messages.push(message);
    for (const w of waiters) {
      if (w.predicate(message)) {
        waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(message);
      }
    }
  }

  const smtp = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    closeTimeout: 1000,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('error', callback);
      stream.on('end', async () => {
        const raw = Buffer.concat(chunks);
        try {
          const parsed = await simpleParser(raw);
          deliver({
            from: session.envelope.mailFrom?.address,
            to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
            raw: raw.toString('utf8'),
            subject: parsed.subject,
            text: parsed.text,
            html: typeof parsed.html === 'string' ? parsed.html : undefined,
            contentType: parsed.headers.get('content-type')?.value,
            headers: parsed.headers,
            parsed,
          });
          callback();
        } catch (err) {
          callback(err);
        }
      });
    },
  });

  await new Promise((resolve, reject) => {
    smtp.once('error', reject);
    smtp.listen(0, '127.0.0.1', () => {
      smtp.off('error', reject);
      resolve();
    });
  });
  const { port } = smtp.server.address();

  const describe = () => messages.map((m) => `  to ${m.to.join(', ')}: ${m.subject}`).join('\n') || '  (none)';

  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    /** The first message (already received or still to come) for which predicate is true. */
    waitFor(predicate, timeoutMs = 10_000) {
      const found = messages.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { predicate, resolve };
        w.timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching mail within ${timeoutMs} ms; received:\n${describe()}`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    /** The messages whose envelope goes to address. */
    to: (address) => messages.filter((m) => m.to.includes(address.toLowerCase())),
    close: () => new Promise((resolve) => smtp.close(resolve)),
  };
}

/** The token of the first APP_URL/<path>?token=… link in text (the text part of a mail). */
export function linkToken(text, appUrl, path) {
  const prefix = `${appUrl}/${path}?token=`;
  const at = text?.indexOf(prefix) ?? -1;
  if (at < 0) throw new Error(`no ${prefix}… link in:\n${text}`);
  const link = text.slice(at).match(/^\S+/)[0];
  return new URL(link).searchParams.get('token');
}

export const APP_URL = 'https://app.example.com';
export const MAIL_FROM = 'authgql e2e <no-reply@example.com>';

/**
 * The server environment that sends mail to smtp: links under APP_URL, no per-IP mail limit (every test
 * request comes from 127.0.0.1), MAIL_ADDRESS_INTERVAL left at its default of one mail of a kind per minute.
 */
export const mailEnv = (smtp) => ({ SMTP_URL: smtp.url, MAIL_FROM, APP_URL, RATE_LIMIT_MAIL: 'off' });
