// REST client of the console. The console has no private back door: it signs in with the
// app's client ID and secret through POST /{org}/{app}/token like any app server would, and
// every later call carries that app token. The token lives only in sessionStorage (gone when
// the tab closes); the secret is never stored.

const SESSION_KEY = 'ferrim.console.session';
const APPKEY_KEY = 'ferrim.console.appKey'; // not secret: remembered to prefill sign-in

/** An error answered by the REST API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(status, body, fallback) {
    const description = (body && typeof body === 'object' && body.error_description)
      || (typeof body === 'string' && body.trim())
      || fallback
      || `HTTP ${status}`;
    super(description);
    this.status = status;
    this.code = body && typeof body === 'object' ? body.error : undefined;
    this.description = description;
  }
}

/** Thrown after the session ended (401 or expiry); the app shows sign-in. */
export class SessionEnded extends ApiError {}

export function rememberedAppKey() {
  try { return localStorage.getItem(APPKEY_KEY) || ''; } catch (_) { return ''; }
}

function rememberAppKey(appKey) {
  try { localStorage.setItem(APPKEY_KEY, appKey); } catch (_) { /* private mode */ }
}

export function parseAppKey(text) {
  const m = /^([^#/\s]+)[#/]([^#/\s]+)$/.exec(String(text || '').trim());
  return m ? { org: m[1], app: m[2], appKey: `${m[1]}#${m[2]}` } : null;
}

export function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (!s || !s.token || !parseAppKey(s.appKey)) return null;
    if (s.expiresAt && Date.now() >= s.expiresAt) {
      sessionStorage.removeItem(SESSION_KEY);
      return { expired: true };
    }
    return s;
  } catch (_) {
    return null;
  }
}

export function clearSession() {
  try { sessionStorage.removeItem(SESSION_KEY); } catch (_) { /* ignore */ }
}

async function send(method, url, { body, token } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, { method, headers, body: payload, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    throw new ApiError(0, null, 'The server could not be reached. Check that ferrim is running.');
  }
  const text = await res.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch (_) { parsed = text; }
  }
  if (!res.ok) throw new ApiError(res.status, parsed);
  return parsed;
}

function appBase(org, app) {
  return `/${encodeURIComponent(org)}/${encodeURIComponent(app)}`;
}

/** Exchanges client ID + secret for an app token; returns the new session. */
export async function signIn(appKeyText, clientId, clientSecret) {
  const key = parseAppKey(appKeyText);
  if (!key) throw new ApiError(0, null, 'Enter the AppKey as org#app (for example demo#demo).');
  const answer = await send('POST', `${appBase(key.org, key.app)}/token`, {
    body: { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret },
  });
  if (!answer || typeof answer.access_token !== 'string') {
    throw new ApiError(0, answer, 'The server answered without an access token.');
  }
  const expiresIn = Number(answer.expires_in) || 0;
  const session = {
    appKey: key.appKey,
    clientId,
    token: answer.access_token,
    // Renew a little early: expiry is not guaranteed to last the full expires_in.
    expiresAt: expiresIn > 0 ? Date.now() + Math.max(0, expiresIn - 30) * 1000 : 0,
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  rememberAppKey(key.appKey);
  return session;
}

/**
 * A client bound to one session. `onEnded(message)` is called once when the server says the
 * token is no longer good (401) or it has expired.
 */
export function createApi(session, onEnded) {
  const { org, app } = parseAppKey(session.appKey);
  const base = appBase(org, app);
  let ended = false;
  const end = (message) => {
    if (!ended) {
      ended = true;
      clearSession();
      onEnded(message);
    }
    return new SessionEnded(401, null, message);
  };
  const call = async (method, path, body) => {
    if (ended) throw new SessionEnded(401, null, 'Signed out.');
    if (session.expiresAt && Date.now() >= session.expiresAt) {
      throw end('Your session has expired. Sign in again.');
    }
    try {
      return await send(method, `${base}${path}`, { body, token: session.token });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        throw end(`Your session has expired or is no longer valid (${e.description}). Sign in again.`);
      }
      throw e;
    }
  };
  const u = (name) => `/users/${encodeURIComponent(name)}`;
  return {
    org,
    app,
    appKey: session.appKey,
    call,
    overview: () => call('GET', ''),
    settings: () => call('GET', '/settings'),
    saveSettings: (s) => call('PUT', '/settings', s),
    stats: () => call('GET', '/stats'),
    listUsers: (limit, cursor) => call('GET', `/users?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
    getUser: (name) => call('GET', u(name)),
    createUsers: (list) => call('POST', '/users', list),
    deleteUser: (name) => call('DELETE', u(name)),
    setPassword: (name, newpassword) => call('PUT', `${u(name)}/password`, { newpassword }),
    deactivate: (name) => call('POST', `${u(name)}/deactivate`),
    activate: (name) => call('POST', `${u(name)}/activate`),
    batchStatus: (usernames) => call('POST', '/users/batch/status', { usernames }),
    resources: (name) => call('GET', `${u(name)}/resources`),
    disconnectAll: (name) => call('GET', `${u(name)}/disconnect`),
    disconnect: (name, res) => call('DELETE', `${u(name)}/disconnect/${encodeURIComponent(res)}`),
    userToken: (username, ttl) => {
      const body = { grant_type: 'inherit', username, autoCreateUser: false };
      if (ttl !== undefined && ttl !== null) body.ttl = ttl;
      return call('POST', '/token', body);
    },
  };
}
