// credentials.js — where the desktop id and token come from and where they are kept.
//
// A link like `/#id=alice-laptop&token=…` opens the page for one desktop. The token travels in the
// fragment, never the query string, because browsers do not send fragments to servers, so it stays
// out of access logs. Once read, the token is removed from the address bar (it would otherwise
// sit in the history and in screenshots) and kept in sessionStorage, which survives a reload but
// not closing the tab. The id stays in the fragment so the address still says which desktop it is.

const ID_KEY = 'deskbridge.id';
const TOKEN_KEY = 'deskbridge.token';
const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Whether `id` is a client id the relay accepts (protocol/src/client_id.rs). */
export function isValidId(id) {
  return ID_PATTERN.test(id);
}

/** The id and token in a fragment like `#id=…&token=…`; missing parts are null. */
export function readFragment(hash) {
  const params = new URLSearchParams(hash.startsWith('#') ? hash.slice(1) : hash);
  return { id: params.get('id'), token: params.get('token') };
}

/** The credentials kept from earlier in this tab, or nulls. */
export function loadSaved() {
  try {
    return {
      id: sessionStorage.getItem(ID_KEY),
      token: sessionStorage.getItem(TOKEN_KEY),
    };
  } catch {
    return { id: null, token: null }; // storage disabled: the form still works
  }
}

export function save({ id, token }) {
  try {
    sessionStorage.setItem(ID_KEY, id);
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled or full: only a reload loses the credentials.
  }
}

/** Rewrites the address bar to `#id=…` (no token), without a reload or a history entry. */
export function showIdInAddress(id) {
  const url = new URL(window.location.href);
  url.hash = `id=${encodeURIComponent(id)}`;
  if (url.href !== window.location.href) window.history.replaceState(window.history.state, '', url);
}

/**
 * The credentials to start with: the fragment wins over what was saved (a new link was opened);
 * a fragment with only an id keeps the saved token if it was for the same id. Strips a token from
 * the address bar. Returns null when there is no id anywhere.
 */
export function initialCredentials() {
  const fromLink = readFragment(window.location.hash);
  const saved = loadSaved();
  let id = fromLink.id ?? saved.id;
  if (id !== null) id = id.trim();
  if (!id) return null;
  let token = fromLink.token;
  if (token === null) token = saved.id === id ? saved.token ?? '' : '';
  const credentials = { id, token: token.trim() };
  if (isValidId(id)) {
    save(credentials);
    if (fromLink.token !== null || fromLink.id !== id) showIdInAddress(id);
  } else if (fromLink.token !== null) {
    // Never leave a token in the address bar, even next to an id we cannot use.
    window.history.replaceState(window.history.state, '', window.location.pathname);
  }
  return credentials;
}
