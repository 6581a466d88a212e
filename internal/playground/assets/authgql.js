// The Playground signs in like an app (docs/playground.md): GraphiQL with a fetcher that keeps the access token
// of a register/login/refreshToken answer in memory (never in web storage or a cookie), sends it
// as "Authorization: Bearer <token>", refreshes once on UNAUTHENTICATED and retries, forgets the tokens on logout
// and shows who is signed in. An Authorization header typed in the Headers pane wins: the page then neither adds
// its own nor refreshes. Subscriptions go over a WebSocket to the same endpoint (graphql-ws's client, protocol
// graphql-transport-ws) and authenticate in connection_init with the same token, never in the URL.
(function () {
  'use strict';

  const config = JSON.parse(document.getElementById('authgql-playground').textContent);
  const h = React.createElement;

  // The session this page holds, in memory only. refresh is the refresh token of the last auth payload (off
  // mode); in cookie mode the server keeps it in an HttpOnly cookie and the body's refreshToken is null. cookie
  // says whether a refresh without argument may work: true at load too, since a cookie of an earlier visit may
  // be there (the first UNAUTHENTICATED then costs one refresh attempt in off mode).
  const session = { access: null, refresh: null, cookie: true, username: null };

  // Who is signed in, for the status badge (never the tokens).
  let snapshot = describe();
  const listeners = new Set();
  function describe() {
    return Object.freeze({
      signedIn: session.access !== null,
      username: session.username,
      refresh: session.refresh !== null ? 'argument' : session.cookie && session.access !== null ? 'cookie' : null,
    });
  }
  function changed() {
    snapshot = describe();
    listeners.forEach((listener) => listener());
  }
  function subscribe(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  function keep(payload) {
    session.access = payload.accessToken;
    session.refresh = typeof payload.refreshToken === 'string' ? payload.refreshToken : null;
    // null: the server set its cookie; not selected: it may have.
    session.cookie = session.refresh === null;
    const username = payload.user && payload.user.username;
    session.username = typeof username === 'string' ? username : null;
    changed();
  }

  function forget() {
    session.access = null;
    session.refresh = null;
    session.cookie = false;
    session.username = null;
    changed();
  }

  const REFRESH_WITH_TOKEN = 'mutation PlaygroundRefresh($token: String!) { refreshToken(token: $token) '
    + '{ accessToken refreshToken user { id username } } }';
  const REFRESH_WITH_COOKIE = 'mutation PlaygroundRefresh { refreshToken '
    + '{ accessToken refreshToken user { id username } } }';
  // Refresh failures after which the held session is of no use; others (RATE_LIMITED, a network error) keep it.
  const SESSION_GONE = new Set(['INVALID_REFRESH_TOKEN', 'FORBIDDEN', 'GRAPHQL_VALIDATION_FAILED']);

  async function post(body, headers) {
    const res = await fetch(config.endpoint, {
      method: 'POST',
      credentials: 'same-origin', // the refresh cookie, in cookie mode
      headers,
      body: JSON.stringify(body),
    });
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch {
      return { errors: [{ message: `HTTP ${res.status}: ${text.slice(0, 200)}` }] };
    }
  }

  function baseHeaders(typed) {
    const headers = new Headers({ 'Content-Type': 'application/json', Accept: 'application/json' });
    for (const [name, value] of Object.entries(typed || {})) headers.set(name, String(value));
    return headers;
  }

  function codes(result) {
    const errors = result && Array.isArray(result.errors) ? result.errors : [];
    return errors.map((e) => e && e.extensions && e.extensions.code);
  }

  async function refresh() {
    let body;
    if (session.refresh !== null) {
      body = { query: REFRESH_WITH_TOKEN, variables: { token: session.refresh }, operationName: 'PlaygroundRefresh' };
    } else if (session.cookie) {
      body = { query: REFRESH_WITH_COOKIE, operationName: 'PlaygroundRefresh' };
    } else {
      return false;
    }
    let result;
    try {
      result = await post(body, baseHeaders());
    } catch {
      return false;
    }
    const payload = result.data && result.data.refreshToken;
    if (payload && typeof payload.accessToken === 'string') {
      keep(payload);
      return true;
    }
    if (codes(result).some((code) => SESSION_GONE.has(code))) forget();
    return false;
  }

  // Requests that meet UNAUTHENTICATED together share one refresh.
  let refreshing = null;
  function refreshOnce() {
    refreshing ??= refresh().finally(() => { refreshing = null; });
    return refreshing;
  }

  function findOperation(documentAST, operationName) {
    const operations = (documentAST ? documentAST.definitions : []).filter((d) => d.kind === 'OperationDefinition');
    if (operationName) return operations.find((op) => op.name && op.name.value === operationName) || null;
    return operations.length === 1 ? operations[0] : null;
  }

  function declares(operation, variable) {
    return !!operation && (operation.variableDefinitions || []).some((v) => v.variable.name.value === variable);
  }

  // The document's RefreshToken takes $refreshToken: left out of the variables, it is the one this page keeps
  // (off mode); in cookie mode there is none and the server reads its cookie.
  function withRefreshToken(params, operation) {
    const variables = params.variables && typeof params.variables === 'object' ? params.variables : {};
    if (session.refresh === null || !declares(operation, 'refreshToken') || variables.refreshToken !== undefined) {
      return params;
    }
    return { ...params, variables: { ...variables, refreshToken: session.refresh } };
  }

  function topFields(operation) {
    if (!operation || !operation.selectionSet) return [];
    return operation.selectionSet.selections.filter((s) => s.kind === 'Field');
  }

  // Whether an answer ended the session this page holds: logout (CURRENT, the default, or ALL) or deleteAccount.
  function endsSession(data, operation, variables, query) {
    if (!operation) return data.logout === true && !/\bOTHERS\b/.test(query || '');
    return topFields(operation).some((field) => {
      const key = field.alias ? field.alias.value : field.name.value;
      if (data[key] !== true) return false;
      if (field.name.value === 'deleteAccount') return true;
      if (field.name.value !== 'logout') return false;
      return logoutScope(field, operation, variables) !== 'OTHERS';
    });
  }

  function logoutScope(field, operation, variables) {
    const arg = (field.arguments || []).find((a) => a.name.value === 'scope');
    if (!arg) return 'CURRENT';
    if (arg.value.kind === 'EnumValue') return arg.value.value;
    if (arg.value.kind !== 'Variable') return 'CURRENT';
    const name = arg.value.name.value;
    if (variables && typeof variables[name] === 'string') return variables[name];
    const definition = (operation.variableDefinitions || []).find((v) => v.variable.name.value === name);
    const fallback = definition && definition.defaultValue;
    return fallback && fallback.kind === 'EnumValue' ? fallback.value : 'CURRENT';
  }

  // Learns from an answer: the tokens of any auth payload in it, the end of the session, the name for the badge.
  function observe(result, params, operation, ours) {
    const data = result && result.data;
    if (!data || typeof data !== 'object') return;
    for (const value of Object.values(data)) {
      if (value && typeof value === 'object' && typeof value.accessToken === 'string') {
        keep(value);
        return;
      }
    }
    if (!ours) return;
    if (endsSession(data, operation, params.variables, params.query)) {
      forget();
    } else if (session.username === null && data.me && typeof data.me.username === 'string') {
      session.username = data.me.username;
      changed();
    }
  }

  async function fetcher(params, options) {
    const typed = (options && options.headers) || {};
    // A typed Authorization header (any case) is sent as typed: no token of ours, no refresh.
    const handsOff = Object.keys(typed).some((name) => name.toLowerCase() === 'authorization');
    const operation = findOperation(options && options.documentAST, params.operationName);
    if (operation && operation.operation === 'subscription') return stream(params, typed);
    const send = () => {
      const headers = baseHeaders(typed);
      const body = handsOff ? params : withRefreshToken(params, operation);
      const token = handsOff ? null : session.access;
      if (token !== null) headers.set('Authorization', `Bearer ${token}`);
      return { token, answer: post(body, headers) };
    };

    let sent = send();
    let result = await sent.answer;
    if (!handsOff && codes(result).includes('UNAUTHENTICATED')) {
      // Another request may have refreshed meanwhile; otherwise refresh, once.
      const renewed = session.access !== null && session.access !== sent.token;
      if (renewed || await refreshOnce()) {
        sent = send();
        result = await sent.answer;
      }
    }
    observe(result, params, operation, sent.token !== null);
    return result;
  }

  // Subscriptions. One client for the page's own session, lazy (a socket only while a subscription runs), whose
  // connection_init carries the token this page holds. While a subscription runs GraphiQL runs nothing else, so
  // the page gets no new token meanwhile: the socket lives until it ends, or until the server closes it with 4403
  // (token expired, session revoked) and the client reconnects through connectionParams. socket.sent is the
  // token of the last connection_init, socket.rejected the last one a 4403 refused: never sent again.
  const socketUrl = (() => {
    const url = new URL(config.endpoint, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.hash = '';
    return url.href;
  })();
  const socket = { sent: null, rejected: null };
  let pageClient = null;

  // Whether a token is worth sending: not refused before, and not expired or about to (10 s) by its exp claim.
  // The server issues JWTs; a token that is not one would be refused as well.
  function usable(token) {
    if (token === null || token === socket.rejected) return false;
    try {
      const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
      return typeof claims.exp !== 'number' || claims.exp * 1000 > Date.now() + 10_000;
    } catch {
      return false;
    }
  }

  // graphql-ws calls this for every connection, also when it reconnects after a 4403 (an expired, revoked or
  // refused token): refresh first when the held token is not usable; no token, an anonymous connection.
  async function connectionParams() {
    if (!usable(session.access)) await refreshOnce();
    const token = usable(session.access) ? session.access : null;
    socket.sent = token;
    return token === null ? undefined : { Authorization: `Bearer ${token}` };
  }

  function retryWait(retries) {
    return new Promise((resolve) => setTimeout(resolve, Math.min(300 * 2 ** retries, 10_000)));
  }

  function getPageClient() {
    pageClient ??= graphqlWs.createClient({
      url: socketUrl,
      connectionParams,
      retryAttempts: 5,
      retryWait,
      on: {
        closed(event) {
          if (event && event.code === 4403) socket.rejected = socket.sent;
        },
      },
    });
    return pageClient;
  }

  // What the result pane shows when a subscription cannot go on.
  function socketFailure(err) {
    if (Array.isArray(err)) return { errors: err }; // an `error` message: the operation's GraphQL errors
    if (err && typeof err.code === 'number') {
      return {
        errors: [{
          message: `The WebSocket closed: ${err.code}${err.reason ? ` ${err.reason}` : ''}`,
          extensions: { closeCode: err.code, closeReason: err.reason || null },
        }],
      };
    }
    if (err instanceof Error) return { errors: [{ message: err.message }] };
    return {
      errors: [{
        message: `The WebSocket to ${socketUrl} failed. If it never opened: the server takes sockets from its own `
          + "origin (PUBLIC_URL's) and CORS_ALLOWED_ORIGINS only; open the Playground at that address.",
      }],
    };
  }

  // A subscription operation: an Observable of its results, which GraphiQL shows one after the other until the
  // stream ends or ■ stops it. A typed Authorization header gets a socket of its own, used as typed, no refresh.
  function stream(params, typed) {
    const typedAuth = Object.entries(typed).find(([name]) => name.toLowerCase() === 'authorization');
    const payload = { query: params.query, variables: params.variables, operationName: params.operationName };
    return {
      subscribe(observer) {
        const client = typedAuth
          ? graphqlWs.createClient({
            url: socketUrl,
            connectionParams: { Authorization: String(typedAuth[1]) },
            retryAttempts: 0,
          })
          : getPageClient();
        const end = () => { if (typedAuth) client.dispose(); };
        const stop = client.subscribe(payload, {
          next: (result) => observer.next(result),
          error(err) {
            end();
            observer.next(socketFailure(err));
            observer.complete();
          },
          complete() {
            end();
            observer.complete();
          },
        });
        return {
          unsubscribe() {
            stop();
            end();
          },
        };
      },
    };
  }

  function Status() {
    const s = React.useSyncExternalStore(subscribe, () => snapshot);
    let text = 'Not signed in';
    if (s.signedIn) text = s.username !== null ? `Signed in as ${s.username}` : 'Signed in';
    const title = s.refresh === 'cookie' ? 'Access token in memory; refresh token in an HttpOnly cookie'
      : s.refresh === 'argument' ? 'Access and refresh token in memory, until this page is reloaded'
        : s.signedIn ? 'Access token in memory; no refresh token' : 'Run Register or Login';
    return h('span', {
      className: 'authgql-status', role: 'status', 'data-signed-in': String(s.signedIn), title,
    }, text);
  }

  // For tests and for trying the refresh by hand: who is signed in (no tokens), and a way to spoil the access
  // token this page holds so that the next request meets UNAUTHENTICATED.
  window.__authgqlPlayground = Object.freeze({
    status: () => snapshot,
    replaceAccessToken(token) {
      if (session.access === null) throw new Error('not signed in');
      session.access = String(token);
    },
  });

  // GraphiQL opens on its stored tabs when it has some; otherwise on our document, and its variables pane
  // starts from the variables prop (set only then: given with stored tabs, it would open a tab of its own).
  let fresh = true;
  try {
    fresh = localStorage.getItem('graphiql:tabState') === null;
  } catch { /* storage disabled: GraphiQL keeps nothing either */ }

  const plugins = typeof GraphiQLPluginExplorer === 'undefined' ? [] : [GraphiQLPluginExplorer.explorerPlugin()];
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    h(GraphiQL, {
      fetcher,
      defaultQuery: config.query,
      defaultTabs: [{ query: config.query, variables: config.variables }],
      variables: fresh ? config.variables : undefined,
      defaultEditorToolsVisibility: 'variables',
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false, // a typed token stays out of localStorage too
      inputValueDeprecation: true,
      plugins,
    }, h(GraphiQL.Logo, null, h('span', null, config.title), h(Status))),
  );
}());
