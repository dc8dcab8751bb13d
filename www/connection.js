// connection.js — the page's one WebSocket to the relay, kept open by itself.
//
// Opens `/ws` on the page's own origin (wss: when the page is https:), sends `authentication` as
// the first message, and reports every state change to the page: connecting, connected (after the
// relay's `welcome`), reconnecting (with the time of the next try) and disconnected. When the socket
// drops it retries with exponential backoff — 0.5 s doubling to 30 s, with jitter so that many tabs
// do not reconnect in lockstep after a relay restart. It does not hammer a relay that refused the
// credentials (close 1008 after `unauthorized`): it stops and says why, so the user can fix the token.
//
// Two kinds of connection: `web` (one desktop, `credentials.id`) and `fleet` (the signed-in grid:
// every desktop the person may see, no id). Either proves itself with `credentials.token` or, when
// that is empty, with the session cookie the browser sends along with the handshake.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
/** A connection that lasted this long was healthy: the next drop starts the backoff afresh. */
const HEALTHY_MS = 10_000;

/** Errors after which a 1008 close is worth retrying (the credentials were not the problem). */
const RETRYABLE_POLICY_ERRORS = new Set(['too_many_viewers', 'auth_timeout', 'rate_limited', 'timeout']);

/**
 * @typedef {{state: 'connecting'|'connected'|'reconnecting'|'disconnected',
 *            retryAt?: number, reason?: string, refused?: boolean, expired?: boolean}} ConnectionStatus
 *   retryAt is on the performance.now() clock; refused means the relay turned the credentials down.
 */

export class RelayConnection {
  /**
   * @param {{onStatus: (s: ConnectionStatus) => void, onMessage: (m: object) => void,
   *          url?: string}} handlers
   */
  constructor({ onStatus, onMessage, url }) {
    this.onStatus = onStatus;
    this.onMessage = onMessage;
    this.url = url ?? relayUrl(window.location);
    this.ws = null;
    this.credentials = null;
    this.wanted = false; // the user wants a connection (Connect pressed, not Disconnect)
    this.welcomed = false;
    this.welcomedAt = 0;
    this.attempt = 0;
    this.retryTimer = 0;
    this.lastErrorCode = null;
    this.status = { state: 'disconnected' };
    window.addEventListener('online', () => {
      if (this.status.state === 'reconnecting') this.open();
    });
  }

  /**
   * Connects (or reconnects at once) with these credentials.
   * @param {{id?: string, token?: string, mode?: 'web'|'fleet'}} credentials
   */
  connect(credentials) {
    this.credentials = {
      id: credentials.id, token: credentials.token || '', mode: credentials.mode ?? 'web',
    };
    this.wanted = true;
    this.attempt = 0;
    this.open();
  }

  /** Closes the socket and stops reconnecting until connect() is called again. */
  disconnect(reason = 'You disconnected.') {
    this.wanted = false;
    this.clearRetry();
    this.dropSocket(1000, 'viewer disconnected');
    this.setStatus({ state: 'disconnected', reason });
  }

  get connected() {
    return this.status.state === 'connected';
  }

  /** Sends one message; false when there is no authenticated socket to send it on. */
  send(message) {
    if (!this.connected || this.ws === null || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  open() {
    this.clearRetry();
    this.dropSocket(1000, 'reconnecting');
    this.welcomed = false;
    this.lastErrorCode = null;
    this.setStatus({ state: 'connecting' });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleRetry(`Could not open the connection: ${err.message}`);
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      const auth = this.credentials.mode === 'fleet'
        ? { event: 'authentication', client_mode: 'fleet' }
        : { event: 'authentication', client_id: this.credentials.id, client_mode: 'web' };
      if (this.credentials.token) auth.token = this.credentials.token;
      ws.send(JSON.stringify(auth));
    });
    ws.addEventListener('message', (ev) => {
      if (ws !== this.ws) return;
      this.receive(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.closed(ev.code, ev.reason);
    });
    // 'error' is always followed by 'close', which decides what happens next.
  }

  receive(data) {
    if (typeof data !== 'string') return; // the relay speaks text frames only
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message === null || typeof message !== 'object' || typeof message.event !== 'string') return;
    if (message.event === 'error' && typeof message.code === 'string') {
      this.lastErrorCode = message.code;
    } else if (!this.welcomed) {
      // `welcome` is the normal sign of success; an older relay without it proves it by talking.
      // The backoff is not reset here but on a drop after a healthy while, so a relay that
      // welcomes and then drops the page at once is not hammered.
      this.welcomed = true;
      this.welcomedAt = performance.now();
      this.setStatus({ state: 'connected' });
    }
    this.onMessage(message);
  }

  closed(code, reason) {
    if (this.welcomed && performance.now() - this.welcomedAt >= HEALTHY_MS) this.attempt = 0;
    if (!this.wanted) {
      this.setStatus({ state: 'disconnected', reason: this.status.reason });
      return;
    }
    if (code === 1008 && !RETRYABLE_POLICY_ERRORS.has(this.lastErrorCode)) {
      // Refused credentials: retrying would only repeat the refusal (and could lock the id out).
      // An expired token ends a session the relay had accepted: ask for a fresh one.
      this.wanted = false;
      this.setStatus({
        state: 'disconnected',
        reason: reason === 'token expired'
          ? 'The token has expired: paste a fresh one and press Connect.'
          : 'Stopped retrying: the relay refused this id or token.',
        closeReason: reason,
        refused: true,
        expired: reason === 'token expired',
      });
      return;
    }
    let why;
    if (code === 1001 || this.lastErrorCode === 'shutting_down') why = 'The relay is restarting.';
    else if (code === 1009) why = 'A message was too large for the relay.';
    else if (code === 1013) why = 'The relay asked to try again later.';
    else if (code === 1006) why = 'The connection to the relay was lost.';
    else why = reason ? `The relay closed the connection: ${reason}` : 'The relay closed the connection.';
    this.scheduleRetry(why);
  }

  scheduleRetry(reason) {
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    // "Equal jitter": at least half the backoff, so the delay still grows, plus a random rest.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt = Math.min(this.attempt + 1, 16);
    this.clearRetry();
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = 0;
      if (this.wanted) this.open();
    }, delay);
    this.setStatus({ state: 'reconnecting', retryAt: performance.now() + delay, reason });
  }

  clearRetry() {
    if (this.retryTimer !== 0) window.clearTimeout(this.retryTimer);
    this.retryTimer = 0;
  }

  dropSocket(code, reason) {
    const ws = this.ws;
    this.ws = null; // its close event is now ignored
    if (ws === null) return;
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(code, reason);
    } else if (ws.readyState === WebSocket.CONNECTING) {
      // Closing a socket that is still connecting makes the browser log an error; close it as
      // soon as it opens instead (its events are already ignored).
      ws.addEventListener('open', () => ws.close(code, reason));
    }
  }

  setStatus(status) {
    this.status = status;
    this.onStatus(status);
  }
}

/** `ws://host/ws` for an http page, `wss://host/ws` for an https one. */
export function relayUrl(location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}
