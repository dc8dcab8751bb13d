// credentials.js — where the desktop id and token come from and where they are kept.
//
// A link like `/#id=alice-laptop&token=…` opens the page for one desktop. The token travels in the
// fragment, never the query string, because browsers do not send fragments to servers, so it stays
// out of access logs. Once read, the token is removed from the address bar (it would otherwise
// sit in the history and in screenshots) and kept in sessionStorage, which survives a reload but
// not closing the tab. The id stays in the fragment so the address still says which desktop it is.
//
// A view-only link, `/#id=…&share=…`, is handled the same way: its token is kept in sessionStorage
// with a mark that it is a share link, so a reload still opens the view-only page rather than the
// sign-in form.

const ID_KEY = 'deskbridge.id';
const TOKEN_KEY = 'deskbridge.token';
const SHARE_KEY = 'deskbridge.share';
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Whether `id` is a client id the relay accepts (protocol/src/client_id.rs). */
export function isValidId(id) {
  return ID_PATTERN.test(id);
}

/** The id, token and share token in a fragment like `#id=…&token=…`; missing parts are null. */
export function readFragment(hash) {
  const params = new URLSearchParams(hash.startsWith('#') ? hash.slice(1) : hash);
  return { id: params.get('id'), token: params.get('token'), share: params.get('share') };
}

/**
 * A view-only link's credentials: from the fragment (then kept, and the token taken out of the
 * address bar), or kept earlier in this tab for the fragment's id. Null when there is none.
 */
export function shareCredentials() {
  const link = readFragment(window.location.hash);
  const id = link.id?.trim() ?? '';
  if (link.share !== null) {
    const credentials = { id, token: link.share.trim() };
    if (!isValidId(id)) {
      window.history.replaceState(window.history.state, '', window.location.pathname);
      return credentials;
    }
    save(credentials);
    try {
      sessionStorage.setItem(SHARE_KEY, id);
    } catch {
      // Storage disabled: a reload needs the link again.
    }
    showIdInAddress(id);
    return credentials;
  }
  try {
    const saved = loadSaved();
    if (id !== '' && sessionStorage.getItem(SHARE_KEY) === id && saved.id === id && saved.token) {
      return { id, token: saved.token };
    }
  } catch {
    // Storage disabled: no share link kept.
  }
  return null;
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
    if (sessionStorage.getItem(SHARE_KEY) !== id) sessionStorage.removeItem(SHARE_KEY);
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
