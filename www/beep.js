// beep.js — the Beep button and its delivery feedback.
//
// A beep crosses two hops (page → relay → desktop) and can fail at either, so the page says which:
// "sent" once it left the page, then "played ✓" or the agent's own error from `beep_result`, the
// relay's `peer_offline`/`peer_busy`, or "no answer" if nothing comes back in time. Each beep carries
// a fresh id so that its result is told apart from results of beeps other viewers sent.
//
// While the desktop is offline (asleep, restarting…) "Beep when it's back" sends the beep with
// `wait_ms` (10 minutes): the relay keeps it and delivers it when the desktop connects again, and
// the status follows it through the relay's `command` events until it plays or expires.

import { setText } from './dom.js';

const NO_ANSWER_MS = 5_000;
/** How long "Beep when it's back" waits: the relay's limit. */
export const WAIT_MS = 10 * 60 * 1000;

/** Relay errors that answer a command this page just sent, as the beep's status says them. */
const COMMAND_ERRORS = {
  peer_offline: 'Not delivered: the desktop is offline.',
  peer_busy: 'Not delivered: the desktop is busy; try again in a moment.',
  rate_limited: 'Not delivered: too many beeps in a short time.',
  not_allowed: 'Not delivered: the relay does not allow this viewer to beep.',
  bad_message: 'Not delivered: the relay could not read the request.',
  unknown_event: 'Not delivered: this relay does not know the beep command.',
};

let counter = 0;

/** A fresh command id; crypto.randomUUID needs a secure context, getRandomValues does not. */
function freshId() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  counter += 1;
  return `beep-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}-${counter}`;
}

export class BeepControl {
  /**
   * @param {{button: HTMLButtonElement, later: HTMLButtonElement, status: HTMLElement,
   *          hint: HTMLElement, send: (message: object) => boolean}} parts
   */
  constructor({ button, later, status, hint, send }) {
    this.button = button;
    this.later = later;
    this.statusEl = status;
    this.hint = hint;
    this.send = send;
    this.pendingId = null; // the beep waiting for an answer
    this.lastId = null; // the latest beep, so a late answer still counts
    this.timer = 0;
    button.addEventListener('click', () => this.beep());
    later.addEventListener('click', () => this.beep(WAIT_MS));
  }

  /**
   * Enables the button when a beep can reach a desktop; otherwise says why not. `offline`: the
   * page is connected and the desktop is away, so a beep may wait for it.
   */
  setAvailable(available, why, offline = false) {
    this.button.disabled = !available;
    this.later.hidden = !offline;
    this.later.disabled = !offline;
    setText(this.hint, available ? 'Plays a short tone on the desktop.' : why);
  }

  /** Sends a beep; with `waitMs`, one the relay keeps until the desktop is back. */
  beep(waitMs = 0) {
    const id = freshId();
    this.stopTimer();
    const message = waitMs > 0 ? { event: 'beep', id, wait_ms: waitMs } : { event: 'beep', id };
    if (!this.send(message)) {
      this.pendingId = null;
      this.show('failed', 'Not sent: the page is not connected to the relay.');
      return;
    }
    this.pendingId = id;
    this.lastId = id;
    if (waitMs > 0) {
      this.show('sent', `It will beep when the desktop is back (within ${waitMs / 60_000} min).`);
      return; // the relay says when it is delivered, played or expired
    }
    this.show('sent', 'Beep sent, waiting for the desktop…');
    this.timer = window.setTimeout(() => {
      this.timer = 0;
      if (this.pendingId !== id) return;
      this.pendingId = null;
      this.show('no-answer', `No answer from the desktop within ${NO_ANSWER_MS / 1000} s.`);
    }, NO_ANSWER_MS);
  }

  /** A `beep_result` from the desktop (forwarded to every viewer of the id). */
  result(message) {
    const id = typeof message.id === 'string' ? message.id : null;
    // No id: an agent that does not echo ids; it answers the beep in flight, if any.
    const ours = id === null ? this.pendingId !== null : id === this.pendingId || id === this.lastId;
    if (!ours) return;
    const late = this.pendingId === null;
    this.pendingId = null;
    this.stopTimer();
    if (message.ok === true) {
      this.show('played', late ? 'Beep played ✓ (the answer came late)' : 'Beep played ✓');
    } else {
      const why = typeof message.error === 'string' && message.error ? message.error : 'no reason given';
      this.show('failed', `The desktop could not play it: ${why}`);
    }
  }

  /** A `command` event: the relay's word on where a beep is (only ours changes the status). */
  commandEvent(event) {
    if (event.id !== this.pendingId || this.pendingId === null) return;
    if (event.state === 'delivered' && this.timer === 0) {
      this.show('sent', 'The desktop is back; beep delivered, waiting for it to play…');
      this.timer = window.setTimeout(() => {
        this.timer = 0;
        if (this.pendingId !== event.id) return;
        this.pendingId = null;
        this.show('no-answer', `No answer from the desktop within ${NO_ANSWER_MS / 1000} s.`);
      }, NO_ANSWER_MS);
    } else if (event.state === 'expired') {
      this.pendingId = null;
      this.stopTimer();
      this.show('failed', 'Not played: the desktop did not come back within 10 minutes.');
    }
  }

  /**
   * A relay `error` event. Errors carry no id, so one that follows a beep in flight is taken as its
   * answer. Returns true when it was.
   */
  relayError(code) {
    if (this.pendingId === null || !Object.hasOwn(COMMAND_ERRORS, code)) return false;
    this.pendingId = null;
    this.stopTimer();
    this.show('failed', COMMAND_ERRORS[code]);
    return true;
  }

  /** The socket closed: a beep in flight will get no answer on it. */
  connectionLost() {
    if (this.pendingId === null) return;
    if (this.timer === 0 && this.statusEl.dataset.state === 'sent') {
      // A beep waiting at the relay still waits; the list shows how it ends.
      this.pendingId = null;
      this.show('sent', 'The beep waits at the relay; reconnecting to follow it.');
      return;
    }
    this.pendingId = null;
    this.stopTimer();
    this.show('failed', 'The connection dropped before the desktop answered.');
  }

  stopTimer() {
    if (this.timer !== 0) window.clearTimeout(this.timer);
    this.timer = 0;
  }

  show(state, text) {
    this.statusEl.dataset.state = state;
    setText(this.statusEl, text);
  }
}
