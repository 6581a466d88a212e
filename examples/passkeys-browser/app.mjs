// authgql's second factor and passkeys from a browser page, with plain fetch and the WebAuthn API:
//
//   - a password login (or registration) starts a level-1 session: amr ["pwd"];
//   - enrollTotp shows a secret and its QR code; confirmTotp with a code from the app makes it the account's second
//     factor, answers ten recovery codes (shown once) and new tokens for the same session at level 2;
//   - beginPasskeyRegistration → navigator.credentials.create → finishPasskeyRegistration adds a passkey;
//   - beginPasskeyLogin → navigator.credentials.get → finishPasskeyLogin signs in with no username and no password:
//     a level-2 session, amr ["webauthn"];
//   - a password login of an account with a second factor is confined to level 1 (every field but me, verifyMfa,
//     beginMfaPasskey, logout and sessions answers FORBIDDEN, reason mfa_required) until verifyMfa proves the
//     factor, with a code or with a passkey (beginMfaPasskey → navigator.credentials.get).
//
// The server speaks WebAuthn's JSON: options with base64url strings where the browser API wants bytes, and the
// credential back with base64url strings where the browser gives bytes. toCreationOptions, toRequestOptions and
// credentialJSON below convert (PublicKeyCredential.parseCreationOptionsFromJSON and credential.toJSON() do the
// same in browsers that have them).
//
// Both tokens live only in this module's memory: a reload signs out. The API URL comes from ?api=… (default
// http://localhost:8080/query); the page's origin must be in the server's CORS_ALLOWED_ORIGINS and
// WEBAUTHN_ORIGINS, its host the WEBAUTHN_RP_ID or below it. Tested in Chromium with a virtual authenticator by
// e2e/tests/passkeys.test.mjs.
const API_URL = new URLSearchParams(location.search).get("api") ?? "http://localhost:8080/query";

let tokens = null; // { accessToken, refreshToken }

const TOKENS = "accessToken refreshToken";

class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.code = errors[0]?.extensions?.code;
    this.reason = errors[0]?.extensions?.reason;
  }
}

async function post(query, variables, accessToken) {
  const headers = { "content-type": "application/json" };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  const res = await fetch(API_URL, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  return res.json();
}

// One GraphQL operation with the current access token; on UNAUTHENTICATED (it expired) refreshes once and
// retries. A refresh keeps the session's level.
async function api(query, variables = {}) {
  let body = await post(query, variables, tokens?.accessToken);
  if (tokens && body.errors?.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
    const refreshed = await post(`mutation Refresh($t: String) { refreshToken(token: $t) { ${TOKENS} } }`,
      { t: tokens.refreshToken });
    if (!refreshed.data) {
      tokens = null;
      await show();
      throw new ApiError(refreshed.errors);
    }
    tokens = refreshed.data.refreshToken;
    body = await post(query, variables, tokens.accessToken);
  }
  if (body.errors?.length) throw new ApiError(body.errors);
  return body.data;
}

// --- base64url <-> bytes, and WebAuthn's JSON forms ---

function bytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function base64url(buffer) {
  const binary = String.fromCharCode(...new Uint8Array(buffer));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const descriptors = (list) => (list ?? []).map((c) => ({ ...c, id: bytes(c.id) }));

// The begin* mutations answer the options in WebAuthn's JSON form (PublicKeyCredentialCreationOptionsJSON, what
// PublicKeyCredential.parseCreationOptionsFromJSON takes); a { publicKey: … } wrapper, as some servers send, is
// accepted too.
const unwrap = (options) => options.publicKey ?? options;

// beginPasskeyRegistration: { challenge, user: { id, … }, excludeCredentials, … }.
function toCreationOptions(options) {
  const publicKey = unwrap(options);
  return {
    ...publicKey,
    challenge: bytes(publicKey.challenge),
    user: { ...publicKey.user, id: bytes(publicKey.user.id) },
    excludeCredentials: descriptors(publicKey.excludeCredentials),
  };
}

// beginPasskeyLogin and beginMfaPasskey: { challenge, rpId, allowCredentials, userVerification, … }.
function toRequestOptions(options) {
  const publicKey = unwrap(options);
  return { ...publicKey, challenge: bytes(publicKey.challenge), allowCredentials: descriptors(publicKey.allowCredentials) };
}

// A PublicKeyCredential as the server reads it: every byte string base64url.
function credentialJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: base64url(r.clientDataJSON) };
  if (r.attestationObject) { // navigator.credentials.create
    response.attestationObject = base64url(r.attestationObject);
    response.transports = r.getTransports?.() ?? [];
  } else { // navigator.credentials.get
    response.authenticatorData = base64url(r.authenticatorData);
    response.signature = base64url(r.signature);
    if (r.userHandle) response.userHandle = base64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: base64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
    response,
  };
}

async function getAssertion(options) {
  const credential = await navigator.credentials.get({ publicKey: toRequestOptions(options) });
  return credentialJSON(credential);
}

// The access token's payload, for display and to choose the screen. Never a security decision: the server checks
// the signature and the level on every request.
function claims() {
  const payload = tokens.accessToken.split(".")[1];
  return JSON.parse(new TextDecoder().decode(bytes(payload)));
}

// --- the flows ---

async function signedIn(payload) {
  tokens = { accessToken: payload.accessToken, refreshToken: payload.refreshToken };
  await show();
}

async function register({ username, email, password }) {
  const data = await api(`mutation Register($input: RegisterInput!) { register(input: $input) { ${TOKENS} } }`,
    { input: { username, email, password } });
  await signedIn(data.register);
}

async function login({ username, password }) {
  const data = await api(`mutation Login($input: LoginInput!) { login(input: $input) { ${TOKENS} } }`,
    { input: { username, password } });
  await signedIn(data.login);
}

// Passwordless: the authenticator picks a discoverable passkey for this site; the server finds the account by it.
async function passkeyLogin() {
  tokens = null;
  const begin = await api("mutation BeginPasskeyLogin { beginPasskeyLogin }");
  const response = await getAssertion(begin.beginPasskeyLogin);
  const data = await api(`mutation FinishPasskeyLogin($r: JSON!) { finishPasskeyLogin(response: $r) { ${TOKENS} } }`,
    { r: response });
  await signedIn(data.finishPasskeyLogin);
}

// Level 1 → 2 with a TOTP or recovery code: same session, new tokens.
async function verifyCode({ code }) {
  const data = await api(`mutation VerifyMfa($code: String) { verifyMfa(code: $code) { ${TOKENS} } }`,
    { code: code.trim() });
  await signedIn(data.verifyMfa);
}

// Level 1 → 2 with one of the account's passkeys.
async function verifyPasskey() {
  const begin = await api("mutation BeginMfaPasskey { beginMfaPasskey }");
  const response = await getAssertion(begin.beginMfaPasskey);
  const data = await api(`mutation VerifyMfa($r: JSON) { verifyMfa(passkeyResponse: $r) { ${TOKENS} } }`,
    { r: response });
  await signedIn(data.verifyMfa);
}

async function enrollTotp() {
  const { enrollTotp } = await api("mutation EnrollTotp { enrollTotp { secret otpauthUri qrCodeDataUrl } }");
  $("#totp-qr").src = enrollTotp.qrCodeDataUrl;
  $("#totp-uri").href = enrollTotp.otpauthUri;
  $("#totp-secret").textContent = enrollTotp.secret;
  $("#totp-setup").hidden = false;
}

async function confirmTotp({ code }) {
  const data = await api(`mutation ConfirmTotp($code: String!) {
    confirmTotp(code: $code) { recoveryCodes auth { ${TOKENS} } } }`, { code: code.trim() });
  $("#totp-setup").hidden = true;
  showRecoveryCodes(data.confirmTotp.recoveryCodes);
  await signedIn(data.confirmTotp.auth);
}

async function regenerateRecoveryCodes() {
  const data = await api("mutation RegenerateRecoveryCodes { regenerateRecoveryCodes }");
  showRecoveryCodes(data.regenerateRecoveryCodes);
}

async function addPasskey({ name }) {
  const begin = await api("mutation BeginPasskeyRegistration { beginPasskeyRegistration }");
  const credential = await navigator.credentials.create({ publicKey: toCreationOptions(begin.beginPasskeyRegistration) });
  await api(`mutation FinishPasskeyRegistration($r: JSON!, $name: String) {
    finishPasskeyRegistration(response: $r, name: $name) { id } }`,
  { r: credentialJSON(credential), name: name.trim() || null });
  await show();
}

async function removePasskey(id) {
  await api("mutation DeletePasskey($id: ID!) { deletePasskey(id: $id) }", { id });
  await show();
}

async function logout() {
  try {
    await api("mutation Logout { logout }");
  } finally {
    tokens = null;
    $("#recovery").hidden = true;
    $("#totp-setup").hidden = true;
    $("#passkeys").replaceChildren();
    await show();
  }
}

// --- the screen ---

const $ = (selector) => document.querySelector(selector);

function showRecoveryCodes(codes) {
  $("#recovery-codes").replaceChildren(...codes.map((code) => {
    const li = document.createElement("li");
    li.append(Object.assign(document.createElement("code"), { textContent: code }));
    return li;
  }));
  $("#recovery").hidden = false;
}

// Chooses the screen from the tokens: none, level 1 of an account with a factor, or a full session; then fills it.
async function show() {
  let state = "signed-out";
  let c = null;
  if (tokens) {
    c = claims();
    state = c.mfa && c.aal < 2 ? "mfa-required" : "signed-in";
  }
  for (const id of ["signed-out", "mfa-required", "signed-in"]) $(`#${id}`).hidden = id !== state;
  document.body.dataset.state = state;
  if (!c) return;

  $("#aal").textContent = String(c.aal);
  $("#amr").textContent = (c.amr ?? []).join(", ");
  $("#sid").textContent = c.sid;
  const { me } = await api("query Me { me { username mfaEnabled } }"); // me answers at level 1 too
  document.querySelectorAll(".who").forEach((el) => { el.textContent = me.username; });
  $("#mfa-enabled").textContent = me.mfaEnabled ? "on" : "off";
  if (state === "signed-in") await showPasskeys();
}

// The list is one part of the screen: when it cannot load, the rest still works.
async function showPasskeys() {
  $("#passkeys-error").textContent = "";
  try {
    await listPasskeys();
  } catch (err) {
    $("#passkeys-error").textContent = describe(err);
  }
}

async function listPasskeys() {
  const { passkeys } = await api("query Passkeys { passkeys { id name createdAt lastUsedAt } }");
  $("#passkeys").replaceChildren(...passkeys.map((p) => {
    const li = document.createElement("li");
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "Remove" });
    remove.setAttribute("aria-label", `Remove ${p.name}`);
    remove.addEventListener("click", () => run(() => removePasskey(p.id)));
    const used = p.lastUsedAt ? `last used ${p.lastUsedAt}` : "never used";
    li.append(Object.assign(document.createElement("span"), { className: "name", textContent: p.name }),
      ` (added ${p.createdAt}, ${used}) `, remove);
    return li;
  }));
}

// An API error with its code and reason (FORBIDDEN, mfa_required), or a browser's (NotAllowedError: the user
// cancelled the passkey dialog).
function describe(err) {
  const detail = [err.code, err.reason].filter(Boolean).join(", ");
  return detail ? `${err.message} (${detail})` : `${err.name}: ${err.message}`;
}

// Runs one user action: busy while it lasts, its error (code and reason) on the screen.
async function run(action) {
  document.body.dataset.busy = "true";
  $("#error").textContent = "";
  try {
    await action();
  } catch (err) {
    $("#error").textContent = describe(err);
    // A refreshed session of an account that gained a factor meanwhile is level 1: ask for the factor.
    if (err.reason === "mfa_required") await show().catch(() => {});
  } finally {
    document.body.dataset.busy = "false";
  }
}

function onSubmit(selector, action) {
  $(selector).addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const values = Object.fromEntries(new FormData(form));
    run(async () => {
      await action(values);
      form.reset();
    });
  });
}

onSubmit("#login-form", login);
onSubmit("#register-form", register);
onSubmit("#verify-form", verifyCode);
onSubmit("#totp-confirm-form", confirmTotp);
onSubmit("#passkey-add-form", addPasskey);
$("#passkey-login").addEventListener("click", () => run(passkeyLogin));
$("#verify-passkey").addEventListener("click", () => run(verifyPasskey));
$("#totp-enroll").addEventListener("click", () => run(enrollTotp));
$("#recovery-regenerate").addEventListener("click", () => run(regenerateRecoveryCodes));
document.querySelectorAll(".logout").forEach((button) => button.addEventListener("click", () => run(logout)));
