// adddesktop.js — "Add a desktop" (operators, on the grid): pick an id, get the exact
// `deskbridge-agent install …` line to paste on that desktop, with a Copy button.
//
// The id is checked here against the protocol's id rules so a typo is caught at once; whether it
// lies within the person's patterns is the relay's to decide (`POST /api/desktops`), and its
// refusal is shown in its own words. A new id is handed to `onAdded`, which puts it on the grid
// as "waiting for first connection" straight away.

import { addDesktop } from './api.js';
import { copyText } from './copy.js';
import { isValidId } from './credentials.js';
import { setText } from './dom.js';

const $ = (id) => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`index.html lacks #${id}`);
  return el;
};

export class AddDesktop {
  /** @param {{onAdded: (id: string) => void}} handlers */
  constructor({ onAdded }) {
    this.onAdded = onAdded;
    this.open = $('add-open');
    this.dialog = $('add-dialog');
    this.form = $('add-form');
    this.id = $('add-id');
    this.submit = $('add-submit');
    this.error = $('add-error');
    this.patterns = $('add-patterns');
    this.result = $('add-result');
    this.command = $('add-command');
    this.copy = $('add-copy');
    this.copyStatus = $('add-copy-status');
    this.open.addEventListener('click', () => this.show());
    $('add-close').addEventListener('click', () => this.dialog.close());
    this.id.addEventListener('input', () => {
      this.id.removeAttribute('aria-invalid');
      setText(this.error, '');
    });
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.add();
    });
    this.copy.addEventListener('click', async () => {
      const copied = await copyText(this.command.textContent, this.command);
      setText(this.copyStatus, copied ? 'Copied.' : 'Selected: press Ctrl+C (⌘C) to copy.');
    });
  }

  /** Offers the button to operators only; `patterns` (e.g. "alice-*") is said in the hint. */
  setAllowed(allowed, patterns) {
    this.open.hidden = !allowed;
    setText(this.patterns, patterns ? `, within ${patterns}` : '');
    if (!allowed && this.dialog.open) this.dialog.close();
  }

  show() {
    this.id.value = '';
    this.id.removeAttribute('aria-invalid');
    setText(this.error, '');
    this.result.hidden = true;
    setText(this.command, '');
    setText(this.copyStatus, '');
    this.dialog.showModal();
    this.id.focus();
  }

  async add() {
    const id = this.id.value.trim();
    if (!isValidId(id)) {
      this.id.setAttribute('aria-invalid', 'true');
      setText(this.error, 'Use 1–64 letters, digits, dots, dashes or underscores, starting with a letter or digit.');
      this.error.dataset.code = 'bad_id';
      this.id.focus();
      return;
    }
    this.submit.disabled = true;
    setText(this.error, '');
    try {
      const added = await addDesktop(id);
      setText(this.command, added.command);
      this.result.hidden = false;
      setText(this.copyStatus, '');
      this.onAdded(typeof added.id === 'string' ? added.id : id);
      this.copy.focus();
    } catch (err) {
      this.id.setAttribute('aria-invalid', 'true');
      this.error.dataset.code = err.code;
      setText(this.error, err.message);
      this.id.focus();
    } finally {
      this.submit.disabled = false;
    }
  }
}
