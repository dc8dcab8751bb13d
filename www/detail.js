// detail.js — the detail view: one desktop, live. Holds what the view knows (connection,
// presence, latest sample) and keeps every element on screen true to it.
//
// The other modules each do one job (connection.js the socket, chart.js the chart, gauges.js the
// bars, beep.js the Beep button, notify.js the Notify control, commands.js the list of recent
// commands, credentials.js the id and token, share.js the view-only links);
// this file routes the relay's messages to them and renders the state that depends on time
// passing: the reconnect countdown, the age of the last sample (marked stale once it is 2 s late
// for the reporting interval in force, which `presence.interval_ms` says) and how long the desktop
// has been offline.
//
// Two more modules hook in with a line each: history.js (the chart's 1 h / 24 h / 30 d ranges from
// the relay's store) and auditlog.js (the operators' Log panel).
//
// app.js opens it in one of three modes: `single` (today's page: the id and token form, a token
// from the link), `signed-in` (a card of the grid was opened: the socket proves itself with the
// session cookie) and `share` (a view-only link: its token, no form, no Beep). Beep is offered
// only when the relay's `welcome` says the role is operator (a relay without roles: always).

import { BeepControl } from './beep.js';
import { CommandList } from './commands.js';
import { NotifyControl } from './notify.js';
import { CpuChart } from './chart.js';
import { RelayConnection } from './connection.js';
import { isValidId, save, showIdInAddress } from './credentials.js';
import { ago, clockTime, duration, percent, plural } from './format.js';
import { setText } from './dom.js';
import { CoreBars, MemoryGauge } from './gauges.js';
import { errorWords, OFFLINE_WORDS } from './words.js';
import { ShareControl } from './share.js';
import { HistoryView } from './history.js';
import { AuditLog } from './auditlog.js';

/** A sample this much later than the reporting interval in force is marked stale. */
const LATE_MS = 2_000;
/** Spacing assumed for history samples that carry no timestamp (the prototype sent once a second). */
const PROTOTYPE_INTERVAL_MS = 1_000;
const TICK_MS = 500;

const $ = (id) => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`index.html lacks #${id}`);
  return el;
};

const ui = {
  title: document.head.querySelector('title'),
  connState: $('conn-state'),
  connDetail: $('conn-detail'),
  watching: $('watching'),
  watchingId: $('watching-id'),
  form: $('id-form'),
  idInput: $('id-input'),
  tokenInput: $('token-input'),
  connect: $('connect'),
  disconnect: $('disconnect'),
  errorBanner: $('error-banner'),
  error: $('error'),
  errorTitle: $('error-title'),
  errorDetail: $('error-detail'),
  errorDismiss: $('error-dismiss'),
  presence: $('presence'),
  presenceWord: $('presence-word'),
  presenceSince: $('presence-since'),
  presenceBox: $('presence-box'),
  viewers: $('viewers'),
  viewersLabel: $('viewers-label'),
  cpuFigure: $('cpu-figure'),
  cpuValue: $('cpu-value'),
  lastSample: $('last-sample'),
  coresCard: $('cores-card'),
  memoryCard: $('memory-card'),
  relayInfo: $('relay-info'),
  announcer: $('announcer'),
  beepCard: $('beep-card'),
  notifyCard: $('notify-card'),
  viewOnly: $('view-only'),
};

/** Everything the page knows; rendered by the functions below. */
const state = {
  /** single | signed-in | share (see the top of this file). */
  mode: 'single',
  /** The role the relay's welcome gave, or null before it (or from a relay without roles). */
  role: null,
  credentials: null,
  connection: { state: 'disconnected' },
  /** @type {{desktop: string, viewers: number|null, since: number|null, inferred: boolean}|null} */
  presence: null,
  /** performance.now() of the latest sample, or null before the first one. */
  lastSampleAt: null,
  /** The latest sample came from a `history` without timestamps (placed as if it ended now). */
  untimedHistory: false,
  /** How often the relay asks the desktop to report (`presence.interval_ms`; 1 s if it says not). */
  intervalMs: PROTOTYPE_INTERVAL_MS,
  /** The interval in force when the latest sample was taken: a sample from before this page
   * opened the desktop may come from a slower cadence (nobody was watching). */
  sampleIntervalMs: PROTOTYPE_INTERVAL_MS,
};

const chart = new CpuChart($('chart'));
const cores = new CoreBars($('cores'), $('cores-count'));
const memory = new MemoryGauge({
  used: $('memory-used'),
  total: $('memory-total'),
  percent: $('memory-percent'),
  bar: $('memory-bar'),
});
const ranges = new HistoryView({ onLive: (live) => live && chart.invalidate() });
const auditLog = new AuditLog();
const connection = new RelayConnection({ onStatus: statusChanged, onMessage: received });
/** Called when the relay refuses the view's credentials (app.js checks whether still signed in). */
let onRefused = () => {};
const share = new ShareControl();
const commands = new CommandList({ list: $('commands'), empty: $('commands-empty') });
const notify = new NotifyControl({
  form: $('notify-form'),
  input: $('notify-text'),
  button: $('notify-send'),
  status: $('notify-status'),
  send: (message) => connection.send(message),
});
const beep = new BeepControl({
  button: $('beep'),
  later: $('beep-later'),
  status: $('beep-status'),
  hint: $('beep-hint'),
  send: (message) => connection.send(message),
});

// ---- connection ------------------------------------------------------------------------------

function statusChanged(status) {
  const before = state.connection.state;
  state.connection = status;
  if (status.state !== before && status.state !== 'connecting') {
    const words = {
      connected: 'Connected to the relay.',
      reconnecting: 'Lost the relay; reconnecting.',
      disconnected: 'Disconnected from the relay.',
    }[status.state];
    announce(status.reason ? `${words} ${status.reason}` : words);
  }
  if (status.state !== 'connected') {
    state.presence = null; // only the relay knows; not connected means not known
    beep.connectionLost();
  } else {
    hideError();
  }
  ui.disconnect.disabled = status.state === 'disconnected';
  if (status.refused) onRefused(status);
  if (status.expired) {
    // The relay ended the session at its token's expiry: the old token is of no more use.
    ui.tokenInput.value = '';
    ui.tokenInput.focus();
  }
  renderConnection();
  renderPresence();
  renderRole();
}

function renderConnection() {
  const status = state.connection;
  ui.connState.dataset.state = status.state;
  document.body.dataset.conn = status.state;
  let text;
  let detail = status.reason ?? '';
  switch (status.state) {
    case 'connected':
      text = 'connected';
      detail = '';
      break;
    case 'connecting':
      text = 'connecting…';
      break;
    case 'reconnecting': {
      const seconds = Math.max(0, Math.ceil((status.retryAt - performance.now()) / 1000));
      text = seconds > 0 ? `reconnecting in ${seconds} s` : 'reconnecting…';
      break;
    }
    default:
      text = 'disconnected';
      if (!detail && state.credentials === null) detail = 'Enter the desktop id to connect.';
  }
  setText(ui.connState, text);
  setText(ui.connDetail, detail);
}

// ---- relay messages --------------------------------------------------------------------------

function received(message) {
  switch (message.event) {
    case 'welcome':
      if (typeof message.server === 'string') {
        setText(ui.relayInfo, `Relay ${message.server}, protocol ${message.protocol}.`);
      }
      state.role = typeof message.role === 'string' ? message.role : null;
      renderRole();
      break;
    case 'presence':
      presenceReceived(message);
      break;
    case 'history':
      historyReceived(message);
      break;
    case 'cpu':
      sampleReceived(message, performance.now());
      break;
    case 'beep_result':
      beep.result(message);
      break;
    case 'notify_result':
      notify.result(message);
      break;
    case 'command':
      if (state.credentials !== null && message.client_id !== undefined
          && message.client_id !== state.credentials.id) break;
      commands.received(message);
      beep.commandEvent(message);
      break;
    case 'error':
      errorReceived(message);
      break;
    default:
      break; // newer relays may send more; ignoring them is the compatible choice
  }
}

function presenceReceived(message) {
  if (state.credentials !== null && message.client_id !== undefined
      && message.client_id !== state.credentials.id) return;
  const desktop = message.desktop === 'online' ? 'online' : 'offline';
  if (state.presence?.desktop !== desktop) announce(`The desktop is ${desktop}.`);
  state.presence = {
    desktop,
    viewers: Number.isFinite(message.viewers) ? message.viewers : null,
    since: Number.isFinite(message.since) ? message.since : null,
    reason: desktop === 'offline' && Object.hasOwn(OFFLINE_WORDS, message.reason) ? message.reason : null,
    inferred: false,
  };
  if (Number.isFinite(message.interval_ms) && message.interval_ms > 0) {
    state.intervalMs = message.interval_ms;
    // Slower applies at once; faster from the next sample, which the desktop sends at once.
    state.sampleIntervalMs = Math.max(state.sampleIntervalMs, state.intervalMs);
  }
  if (state.untimedHistory && desktop === 'offline' && state.presence.since !== null
      && state.lastSampleAt !== null) {
    state.untimedHistory = false;
    const endedAt = performance.now() - Math.max(0, Date.now() - state.presence.since);
    const shift = Math.min(0, endedAt - state.lastSampleAt);
    chart.shift(shift);
    state.lastSampleAt += shift;
    renderAge();
  }
  renderPresence();
}

function historyReceived(message) {
  const samples = Array.isArray(message.samples)
    ? message.samples.filter((s) => s !== null && typeof s === 'object' && Number.isFinite(s.value))
    : [];
  if (samples.length === 0) return; // e.g. a relay that just restarted: keep what the page saw
  const nowPerf = performance.now();
  const nowUnix = Date.now();
  const last = samples[samples.length - 1];
  const timed = samples.every((s) => Number.isFinite(s.ts));
  // Ages come from the desktop's timestamps relative to its newest sample, so a desktop clock that
  // is a little off shifts the history as a whole instead of squashing it.
  const lastAt = timed ? nowPerf - Math.max(0, nowUnix - last.ts) : nowPerf;
  const timeOf = (i) => lastAt - (timed
    ? last.ts - samples[i].ts
    : (samples.length - 1 - i) * PROTOTYPE_INTERVAL_MS);
  // After a reconnect the history overlaps what the page already drew: it replaces that part.
  chart.dropFrom(timeOf(0));
  for (let i = 0; i < samples.length; i += 1) chart.add(timeOf(i), samples[i].value);
  // Without timestamps the history is assumed to end now; `presence` (sent right after) may say
  // the desktop left long ago, and then the history is moved back to that moment.
  state.untimedHistory = !timed;
  // The history's cadence is the interval the desktop reported at before this page came.
  const gap = timed && samples.length > 1 ? last.ts - samples[samples.length - 2].ts : 0;
  state.sampleIntervalMs = gap > 1.5 * state.intervalMs ? gap : state.intervalMs;
  showSample(last, lastAt);
}

function sampleReceived(message, at) {
  if (!Number.isFinite(message.value)) return;
  chart.add(at, message.value);
  state.untimedHistory = false;
  state.sampleIntervalMs = state.intervalMs;
  showSample(message, at);
  if (state.presence === null && state.connection.state === 'connected') {
    // A relay without `presence` (the prototype's): live data proves the desktop is there.
    state.presence = { desktop: 'online', viewers: null, since: null, inferred: true };
    renderPresence();
  }
}

/** Puts one sample's figures on screen (the chart is fed separately). */
function showSample(sample, at) {
  state.lastSampleAt = at;
  setText(ui.cpuValue, percent(sample.value));
  setText(ui.title, `${Math.round(sample.value)}% · ${state.credentials?.id ?? ''} · deskbridge`);

  const hasCores = Array.isArray(sample.cores) && sample.cores.length > 0;
  ui.coresCard.hidden = !hasCores;
  if (hasCores) cores.update(sample.cores);

  const m = sample.memory;
  const hasMemory = m !== null && typeof m === 'object'
    && Number.isFinite(m.used) && Number.isFinite(m.total) && m.total > 0;
  ui.memoryCard.hidden = !hasMemory;
  if (hasMemory) memory.update(m.used, m.total);

  renderAge();
}

function errorReceived(message) {
  const code = typeof message.code === 'string' ? message.code : 'unknown';
  let words = errorWords(code);
  // There is no token to check in these modes: say what the refusal means there.
  if (code === 'unauthorized' && state.mode === 'share') {
    words = 'This view-only link no longer works: it was revoked or has expired.';
  } else if (code === 'unauthorized' && state.mode === 'signed-in') {
    words = 'The relay no longer lets you watch this desktop.';
  }
  if (!beep.relayError(code)) notify.relayError(code, words);
  const said = typeof message.message === 'string' && message.message ? `Relay said: ${message.message}` : '';
  showError(code, words, said);
}

// ---- rendering -------------------------------------------------------------------------------

function renderPresence() {
  const p = state.presence;
  const connected = state.connection.state === 'connected';
  let presenceState = 'unknown';
  let text = connected ? 'waiting for the desktop status…' : 'desktop status unknown';
  let since = '';
  if (p !== null) {
    presenceState = p.desktop;
    text = p.desktop === 'online' ? 'desktop online' : OFFLINE_WORDS[p.reason] ?? 'desktop offline';
    if (p.inferred) text += ' (sending data)';
    if (p.since !== null && p.since > 0) {
      const age = Date.now() - p.since;
      // Offline: how long ago it left. Online: for how long, once that is more than a moment.
      if (p.desktop === 'offline') since = `since ${clockTime(p.since)} · ${ago(age)}`;
      else since = age >= 60_000 ? `since ${clockTime(p.since)} · ${duration(age)}` : `since ${clockTime(p.since)}`;
    }
  }
  ui.presence.dataset.state = presenceState;
  ui.presenceBox.dataset.state = presenceState;
  ui.presenceBox.dataset.reason = p?.reason ?? '';
  setText(ui.presenceWord, text);
  setText(ui.presenceSince, since);

  const viewers = p !== null && p.viewers !== null ? p.viewers : null;
  setText(ui.viewers, viewers === null ? '–' : String(viewers));
  setText(ui.viewersLabel, viewers === null ? 'viewers' : `${plural(viewers, 'viewer')} watching`);

  if (!connected) beep.setAvailable(false, 'Connect to the relay to beep the desktop.');
  else if (p === null) beep.setAvailable(false, 'Waiting to hear whether the desktop is online.');
  else if (p.desktop !== 'online') beep.setAvailable(false, 'The desktop is offline.', true);
  else beep.setAvailable(true);
  notify.setAvailable(connected && p !== null && p.desktop === 'online');
}

function renderAge() {
  if (state.lastSampleAt === null) {
    setText(ui.lastSample, 'no samples yet');
    ui.lastSample.classList.remove('stale');
    ui.cpuFigure.classList.remove('stale');
    document.body.classList.remove('stale-data');
    return;
  }
  const age = performance.now() - state.lastSampleAt;
  const stale = age > state.sampleIntervalMs + LATE_MS;
  const cadence = state.sampleIntervalMs <= PROTOTYPE_INTERVAL_MS
    ? 'live'
    : `updates every ${Math.round(state.sampleIntervalMs / 1000)} s — nobody was watching`;
  setText(ui.lastSample, stale
    ? `stale · last sample ${ago(age)}`
    : `${cadence} · updated ${ago(age)}`);
  ui.lastSample.dataset.cadence = cadence === 'live' ? 'live' : 'slow';
  ui.lastSample.classList.toggle('stale', stale);
  ui.cpuFigure.classList.toggle('stale', stale);
  document.body.classList.toggle('stale-data', stale); // dims the core and memory bars too
}

/** Tells screen readers about a change once (the on-screen texts also tick with time). */
function announce(text) {
  setText(ui.announcer, text);
}

/** Shows the error banner: a sentence, and a detail line (the relay's own message, if any). */
function showError(code, words, detail) {
  ui.error.dataset.code = code;
  setText(ui.errorTitle, words);
  setText(ui.errorDetail, detail);
  ui.errorBanner.hidden = false;
}

function hideError() {
  ui.errorBanner.hidden = true;
  delete ui.error.dataset.code;
  setText(ui.errorTitle, '');
  setText(ui.errorDetail, '');
}

/**
 * Offers what the role may do: Beep for operators (and for a relay that sends no role: it
 * predates roles, and every viewer could beep); the share links for a signed-in operator.
 */
function renderRole() {
  const role = state.role;
  const operator = role === 'operator' || (role === null && state.mode === 'single');
  ui.beepCard.hidden = !operator;
  ui.notifyCard.hidden = !operator;
  const canShare = state.mode === 'signed-in' && role === 'operator'
    && state.connection.state === 'connected';
  share.setDesktop(canShare ? state.credentials.id : null);
  auditLog.setDesktop(role === 'operator' ? state.credentials : null);
}

function resetDesktopView() {
  commands.clear();
  state.lastSampleAt = null;
  state.untimedHistory = false;
  state.intervalMs = PROTOTYPE_INTERVAL_MS;
  state.sampleIntervalMs = PROTOTYPE_INTERVAL_MS;
  chart.clear();
  setText(ui.cpuValue, '–');
  ui.coresCard.hidden = true;
  ui.memoryCard.hidden = true;
  setText(ui.title, 'deskbridge');
  renderAge();
}

// ---- user actions ----------------------------------------------------------------------------

function useCredentials(credentials) {
  if (state.credentials === null || state.credentials.id !== credentials.id) resetDesktopView();
  state.credentials = credentials;
  state.role = null;
  ranges.setDesktop(credentials);
  renderRole();
  ui.idInput.value = credentials.id;
  ui.tokenInput.value = credentials.token;
  setText(ui.watchingId, credentials.id);
  ui.watching.hidden = false;
  hideError();
  connection.connect(credentials);
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const id = ui.idInput.value.trim();
  if (!isValidId(id)) {
    ui.idInput.setAttribute('aria-invalid', 'true');
    ui.idInput.focus();
    showError('bad_id', 'That desktop id cannot be used.',
      'Use 1–64 letters, digits, dots, dashes or underscores.');
    return;
  }
  ui.idInput.removeAttribute('aria-invalid');
  const credentials = { id, token: ui.tokenInput.value.trim() };
  save(credentials);
  showIdInAddress(id);
  useCredentials(credentials);
});

ui.idInput.addEventListener('input', () => ui.idInput.removeAttribute('aria-invalid'));
ui.disconnect.addEventListener('click', () => connection.disconnect());
ui.errorDismiss.addEventListener('click', hideError);

// ---- time ------------------------------------------------------------------------------------

let ticks = 0;
window.setInterval(() => {
  ticks += 1;
  if (state.connection.state === 'reconnecting') renderConnection();
  renderAge();
  if (ticks % 2 === 0) {
    chart.tick();
    if (state.presence !== null) renderPresence(); // "since … · N min ago" moves on
    commands.render(); // "· 2 s ago" moves on
  }
}, TICK_MS);

// ---- opening and closing (app.js) -------------------------------------------------------

/**
 * Opens the view for `credentials` ({id, token}; token '' = the session cookie) in `mode`.
 * `refused` is called when the relay turns the credentials down.
 */
export function openDetail(credentials, mode, refused = () => {}) {
  state.mode = mode;
  onRefused = refused;
  document.body.dataset.mode = mode;
  ui.form.hidden = mode !== 'single';
  ui.viewOnly.hidden = mode !== 'share';
  if (mode === 'single' && credentials === null) {
    renderConnection();
    renderPresence();
    renderAge();
    renderRole();
    ui.disconnect.disabled = true;
    return;
  }
  useCredentials(credentials);
}

/** The id form's starting point when the link's id cannot be used (single mode). */
export function showBadId(id) {
  ui.idInput.value = id;
  ui.idInput.setAttribute('aria-invalid', 'true');
  showError('bad_id', 'The desktop id in the link cannot be used.',
    'Use 1–64 letters, digits, dots, dashes or underscores.');
}

/** Leaves the view (back to the grid, or signed out): closes its socket. */
export function closeDetail() {
  if (state.connection.state !== 'disconnected') connection.disconnect('You left this desktop.');
  share.setDesktop(null);
  ranges.setDesktop(null);
  auditLog.setDesktop(null);
  state.credentials = null;
  setText(ui.title, 'deskbridge');
}

/** The desktop id the view shows, or null. */
export function detailId() {
  return state.credentials?.id ?? null;
}

/** Whether the view is connected (or trying to be) for `credentials`. */
export function detailShows(credentials) {
  const current = state.credentials;
  return current !== null && current.id === credentials.id && current.token === credentials.token
    && state.connection.state !== 'disconnected';
}
