// app.js — the page's entry: decides which page this is and switches between its views.
//
// - A view-only link (`#id=…&share=…`): the detail view of that desktop with the link's token,
//   no sign-in, no Beep.
// - A link with a token (`#id=…&token=…`), or a relay without sign-in (`GET /api/session` is
//   404): today's single-desktop page, exactly as before.
// - Sign-in on: the sign-in form (401), then the grid of every desktop the person may see, fed
//   by one fleet WebSocket; a card opens that desktop's detail view in the same page (`#id=…`),
//   and browser back (or the Back button) returns to the grid. The session is checked at load
//   and every few minutes (which renews the cookie), and whenever the relay refuses a socket:
//   a person removed from the users file sees at once that they are signed out.

import * as api from './api.js';
import { AddDesktop } from './adddesktop.js';
import { RelayConnection } from './connection.js';
import {
  initialCredentials, isValidId, readFragment, shareCredentials,
} from './credentials.js';
import {
  closeDetail, detailShows, openDetail, showBadId,
} from './detail.js';
import { setText } from './dom.js';
import { FleetGrid } from './grid.js';
import { SignIn } from './signin.js';
import { errorWords } from './words.js';

/** How often a signed-in page checks (and so renews) its session. */
const RENEW_MS = 4 * 60_000;

const $ = (id) => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`index.html lacks #${id}`);
  return el;
};

const ui = {
  signinView: $('signin-view'),
  gridView: $('grid-view'),
  detailView: $('detail-view'),
  back: $('back'),
  user: $('user'),
  userName: $('user-name'),
  userRole: $('user-role'),
  signout: $('signout'),
  gridState: $('grid-state'),
  gridError: $('grid-error'),
  filter: $('filter'),
  watching: $('watching'),
};

const page = {
  /** single | signed-in | share */
  mode: 'single',
  /** The signed-in person's `GET /api/session` answer. */
  session: null,
  /** The role the fleet connection's welcome gave (the relay's word wins over the session's). */
  role: null,
  view: 'detail',
  /** The detail view was reached from the grid in this tab (Back can then be browser back). */
  cameFromGrid: false,
  gridScroll: 0,
  lastOpened: null,
  renewTimer: 0,
};

const grid = new FleetGrid({
  list: $('grid'),
  filter: ui.filter,
  count: $('grid-count'),
  empty: $('grid-empty'),
});
const fleet = new RelayConnection({ onStatus: fleetStatus, onMessage: fleetMessage });
const signin = new SignIn({ onSignedIn: () => checkSession(true) });
const adder = new AddDesktop({ onAdded: (id) => grid.addWaiting(id) });

// ---- views -------------------------------------------------------------------------------------

function showView(view) {
  page.view = view;
  document.body.dataset.view = view;
  ui.signinView.hidden = view !== 'signin';
  ui.gridView.hidden = view !== 'grid';
  ui.detailView.hidden = view !== 'detail';
  ui.back.hidden = !(view === 'detail' && page.mode === 'signed-in');
  if (view !== 'detail') ui.watching.hidden = true;
  grid.setShown(view === 'grid');
}

function showGrid() {
  closeDetail();
  showView('grid');
  window.scrollTo(0, page.gridScroll);
  if (page.lastOpened !== null) {
    const card = document.querySelector(`a.desk[data-id="${CSS.escape(page.lastOpened)}"]`);
    card?.focus({ preventScroll: true });
  }
}

function showDesktop(id) {
  if (page.view === 'grid') page.gridScroll = window.scrollY;
  page.lastOpened = id;
  const credentials = { id, token: '' };
  showView('detail');
  if (!detailShows(credentials)) openDetail(credentials, 'signed-in', () => checkSession(false));
  window.scrollTo(0, 0);
}

/** Shows what the address says: a desktop (`#id=…`) or the grid. */
function route() {
  const link = readFragment(window.location.hash);
  const id = link.id?.trim() ?? '';
  if (isValidId(id)) showDesktop(id);
  else showGrid();
}

// ---- the session -------------------------------------------------------------------------------

/**
 * Asks the relay who is signed in. `fresh`: right after the form signed in. A 401 means signed
 * out (shown with why, unless the person had just signed out themselves).
 */
async function checkSession(fresh) {
  let session;
  try {
    session = await api.session();
  } catch (err) {
    if (err.status === 401 && page.mode === 'signed-in') {
      signedOut('You have been signed out: your session ended or your account was changed.', 'signed_out');
    } else if (err.status === 401) {
      // Already on the form (another socket's refusal got here first): keep what it says.
      if (page.mode !== 'signin') showSignIn();
    } else if (!fresh) {
      return; // the relay is unreachable for a moment; the sockets retry by themselves
    } else {
      signin.say(`Could not sign in: ${err.message}`, err.code);
    }
    return;
  }
  signedIn(session);
}

function signedIn(session) {
  const first = page.mode !== 'signed-in';
  page.mode = 'signed-in';
  page.session = session;
  document.body.dataset.mode = 'signed-in';
  setText(ui.userName, typeof session.user === 'string' ? session.user : '');
  renderRole();
  ui.user.hidden = false;
  if (page.renewTimer === 0) page.renewTimer = window.setInterval(() => checkSession(false), RENEW_MS);
  if (first || fleet.status.state === 'disconnected') {
    grid.clear();
    fleet.connect({ mode: 'fleet' });
  }
  // First sign-in: show what the address says. Later (a socket was refused and the session
  // proved still good, e.g. its cookie was renewed): reopen the desktop shown.
  if (first || page.view === 'detail') route();
}

function renderRole() {
  const role = page.role ?? page.session?.role ?? 'viewer';
  setText(ui.userRole, role);
  ui.userRole.dataset.role = role;
  document.body.dataset.role = role;
  const desktops = page.session?.desktops;
  const patterns = Array.isArray(desktops) ? desktops.join(',') : desktops;
  adder.setAllowed(role === 'operator', typeof patterns === 'string' ? patterns : '');
}

function showSignIn(why = '', code = '') {
  page.mode = 'signin';
  document.body.dataset.mode = 'signed-in';
  ui.user.hidden = true;
  showView('signin');
  signin.show(why, code);
}

function signedOut(why, code) {
  if (page.renewTimer !== 0) window.clearInterval(page.renewTimer);
  page.renewTimer = 0;
  page.session = null;
  page.role = null;
  fleet.disconnect('Signed out.');
  closeDetail();
  grid.clear();
  showSignIn(why, code);
}

ui.signout.addEventListener('click', async () => {
  ui.signout.disabled = true;
  try {
    await api.logout();
  } catch {
    // Signed out already, or the relay is unreachable: the page forgets the session either way.
  }
  ui.signout.disabled = false;
  signedOut('You signed out.', 'logged_out');
});

// ---- the fleet connection ----------------------------------------------------------------------

function fleetStatus(status) {
  ui.gridState.dataset.state = status.state;
  const words = {
    connected: 'live',
    connecting: 'connecting…',
    reconnecting: 'reconnecting…',
    disconnected: 'disconnected',
  }[status.state];
  setText(ui.gridState, words);
  if (status.state === 'connected') ui.gridError.hidden = true;
  if (status.refused && page.mode === 'signed-in') checkSession(false);
}

function fleetMessage(message) {
  if (message.event === 'welcome') {
    grid.refreshed(); // the relay sends every desktop afresh
    page.role = typeof message.role === 'string' ? message.role : null;
    renderRole();
  } else if (message.event === 'error') {
    const code = typeof message.code === 'string' ? message.code : 'unknown';
    ui.gridError.dataset.code = code;
    setText(ui.gridError, errorWords(code));
    ui.gridError.hidden = false;
  } else {
    grid.receive(message);
  }
}

// ---- keyboard and history ----------------------------------------------------------------------

document.addEventListener('keydown', (event) => {
  if (event.key !== '/' || page.view !== 'grid' || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement
      || target instanceof HTMLSelectElement || target?.isContentEditable) return;
  event.preventDefault();
  ui.filter.focus();
  ui.filter.select();
});

ui.back.addEventListener('click', () => {
  if (page.cameFromGrid) {
    window.history.back();
  } else {
    window.history.replaceState(window.history.state, '', window.location.pathname);
    route();
  }
});

window.addEventListener('hashchange', () => {
  const link = readFragment(window.location.hash);
  if (link.share !== null || link.token !== null) {
    // A new link pasted into this tab: start again from it.
    window.location.reload();
    return;
  }
  if (page.mode === 'signed-in') {
    page.cameFromGrid = page.view === 'grid' || (page.cameFromGrid && isValidId(link.id ?? ''));
    route();
  } else if (page.mode === 'single') {
    followSingleLink();
  }
});

// ---- the single-desktop page (no sign-in) ------------------------------------------------------

function startSingle() {
  page.mode = 'single';
  showView('detail');
  const initial = initialCredentials();
  if (initial !== null && isValidId(initial.id)) {
    openDetail(initial, 'single');
  } else {
    openDetail(null, 'single');
    if (initial !== null) showBadId(initial.id);
  }
}

/** A link with a new fragment in a single-desktop tab: follow it (as the page always did). */
function followSingleLink() {
  const credentials = initialCredentials();
  if (credentials === null || !isValidId(credentials.id) || detailShows(credentials)) return;
  openDetail(credentials, 'single');
}

// ---- start -------------------------------------------------------------------------------------

async function start() {
  const shared = shareCredentials();
  if (shared !== null) {
    page.mode = 'share';
    showView('detail');
    if (isValidId(shared.id)) openDetail(shared, 'share');
    else {
      openDetail(null, 'single');
      showBadId(shared.id);
    }
    return;
  }
  if (readFragment(window.location.hash).token !== null) {
    startSingle();
    return;
  }
  try {
    signedIn(await api.session());
  } catch (err) {
    if (err.status === 401) showSignIn();
    else startSingle(); // 404: no users file (sign-in off); anything else: today's page
  }
}

start();
