// notify.js — the Notify control (operators): a short text shown as a desktop notification on the
// desktop. Like Beep it says where the request is: sent, shown ✓, or why not (the agent's own
// reason in `notify_result`, or the relay's error). The text is checked here as the relay checks
// it (1–200 characters, no control characters), so a person hears why before sending.

import { setText } from './dom.js';

const MAX_CHARS = 200;
const NO_ANSWER_MS = 10_000;

let counter = 0;

function freshId() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  counter += 1;
  return `notify-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}-${counter}`;
}

/** Why `text` cannot be sent, or null. */
export function textProblem(text) {
  const chars = [...text].length;
  if (chars === 0) return 'Write what the notification should say.';
  if (chars > MAX_CHARS) return `At most ${MAX_CHARS} characters (this is ${chars}).`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(text)) return 'One line of text, without control characters.';
  return null;
}

export class NotifyControl {
  /**
   * @param {{form: HTMLFormElement, input: HTMLInputElement, button: HTMLButtonElement,
   *          status: HTMLElement, send: (message: object) => boolean}} parts
   */
  constructor({ form, input, button, status, send }) {
    this.input = input;
    this.button = button;
    this.statusEl = status;
    this.send = send;
    this.pendingId = null;
    this.timer = 0;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.notify();
    });
  }

  setAvailable(available) {
    this.button.disabled = !available;
  }

  notify() {
    const text = this.input.value.trim();
    const problem = textProblem(text);
    if (problem !== null) {
      this.show('failed', problem);
      return;
    }
    const id = freshId();
    if (!this.send({ event: 'notify', id, text })) {
      this.show('failed', 'Not sent: the page is not connected to the relay.');
      return;
    }
    this.pendingId = id;
    this.show('sent', 'Sent, waiting for the desktop…');
    this.stopTimer();
    this.timer = window.setTimeout(() => {
      if (this.pendingId !== id) return;
      this.pendingId = null;
      this.show('no-answer', `No answer from the desktop within ${NO_ANSWER_MS / 1000} s.`);
    }, NO_ANSWER_MS);
  }

  /** A `notify_result` (every viewer gets every one; only ours counts here). */
  result(message) {
    if (message.id !== this.pendingId || this.pendingId === null) return;
    this.pendingId = null;
    this.stopTimer();
    if (message.ok === true) {
      this.show('played', 'Shown on the desktop ✓');
      this.input.value = '';
    } else {
      const why = typeof message.error === 'string' && message.error ? message.error : 'no reason given';
      this.show('failed', `The desktop could not show it: ${why}`);
    }
  }

  /** A relay `error` right after sending answers the notification in flight. */
  relayError(code, words) {
    if (this.pendingId === null) return false;
    this.pendingId = null;
    this.stopTimer();
    this.show('failed', `Not delivered: ${words}`);
    return true;
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
