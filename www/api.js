// api.js — the relay's HTTP API as the page uses it (docs/protocol.md, "The HTTP API").
//
// Every call goes to the page's own origin with the session cookie (same-origin fetch sends it;
// it is HttpOnly, so this page never sees its value), or, for the reads a token or view-only link
// page makes (history), with `Authorization: Bearer <token>`. Answers are parsed once here: a success
// gives the JSON body (or null for 204), a refusal throws an ApiError carrying the relay's
// `{"error":code,"message":…}`, the status and, for 429, the Retry-After seconds — so each caller
// only decides what to say.

/** A refused or failed API request. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the relay could not be reached)
   * @param {string} code the relay's error code, or `network` / `http_<status>`
   * @param {string} message the relay's words for a person, or ours
   * @param {number|null} retryAfter seconds to wait (429), when the relay said
   */
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function call(method, path, body, token = '') {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network', `Could not reach the relay: ${err.message}`);
  }
  let json = null;
  const text = await response.text().catch(() => '');
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (response.ok) return json;
  const code = json !== null && typeof json.error === 'string' ? json.error : `http_${response.status}`;
  const message = json !== null && typeof json.message === 'string' && json.message
    ? json.message
    : `The relay answered ${response.status}.`;
  const retry = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
  throw new ApiError(response.status, code, message, Number.isFinite(retry) ? retry : null);
}

/**
 * Who is signed in: `{user, role, desktops, expires}`; renews the cookie. Throws 401 when
 * signed out, 404 when the relay has no users file (sign-in off).
 */
export const session = () => call('GET', '/api/session');

/** Signs in; resolves on 204 (the relay set the cookie). 401 bad_credentials, 429 limited. */
export const login = (user, password) => call('POST', '/api/login', { user, password });

export const logout = () => call('POST', '/api/logout', {});

/** A view-only link for one desktop: `{id, desktop, url, token, by, created, expires}`. */
export const createShare = (desktop, ttl) => call('POST', '/api/shares', { desktop, ttl });

/** The desktop's live links: `{shares: [{id, desktop, by, created, expires}]}`. */
export const listShares = (desktop) => call('GET', `/api/shares?desktop=${encodeURIComponent(desktop)}`);

export const revokeShare = (id) => call('DELETE', `/api/shares/${encodeURIComponent(id)}`);

/** Adds a desktop id: `{id, token, relay, command}` (the exact install line). */
export const addDesktop = (id) => call('POST', '/api/desktops', { id });

/**
 * A desktop's cpu history: `{id, from, to, step, points: [[ts, min, mean, max]…], memory_used}`.
 * `step` null lets the relay choose; `token` '' uses the cookie (or nothing, anonymously).
 * 404 `no_store` when the relay keeps no history.
 */
export function history(id, from, to, step = null, token = '') {
  const query = new URLSearchParams({ id, from: String(Math.floor(from)), to: String(Math.ceil(to)) });
  if (step !== null) query.set('step', String(step));
  return call('GET', `/api/history?${query}`, undefined, token);
}

/** The desktop's audit records since `since`: `{desktop, since, records, more}` (operators). */
export function audit(desktop, since, token = '') {
  const query = new URLSearchParams({ desktop, since: String(Math.floor(since)) });
  return call('GET', `/api/audit?${query}`, undefined, token);
}
