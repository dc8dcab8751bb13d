// commands.js — the detail view's live list of the desktop's recent commands, from the relay's
// `command` events: every command anyone sent it in the last 10 minutes, newest first, each in
// its latest state — "alice · beep · played · 2 s ago". The relay sends the list when the view
// joins (after `history`) and every change after that, to every viewer, whatever their role.

import { ago } from './format.js';
import { setText } from './dom.js';

const WINDOW_MS = 10 * 60 * 1000;
const MAX_ROWS = 12;
const STATES = ['requested', 'delivered', 'done', 'failed', 'expired'];
/** What `done` means for each command, in words. */
const DONE_WORDS = { beep: 'played', notify: 'shown' };

/** The state of a command in words: "played", "waiting", "failed: no audio device". */
export function stateWords(name, state, error) {
  switch (state) {
    case 'requested': return 'requested';
    case 'delivered': return 'delivered';
    case 'done': return DONE_WORDS[name] ?? 'done';
    case 'failed': return error ? `failed: ${error}` : 'failed';
    default: return 'expired';
  }
}

export class CommandList {
  /** @param {{list: HTMLElement, empty: HTMLElement}} parts */
  constructor({ list, empty }) {
    this.list = list;
    this.empty = empty;
    /** id → {name, by, state, error, at, row} */
    this.commands = new Map();
  }

  /** A `command` event; anything malformed is ignored. */
  received(event) {
    if (typeof event.id !== 'string' || typeof event.name !== 'string'
        || typeof event.by !== 'string' || !STATES.includes(event.state)
        || !Number.isFinite(event.at)) return;
    const known = this.commands.get(event.id);
    const row = known?.row ?? document.createElement('li');
    row.dataset.state = event.state;
    const command = {
      name: event.name,
      by: event.by,
      state: event.state,
      error: typeof event.error === 'string' ? event.error : '',
      at: event.at,
      row,
    };
    // Newest first: a command that moves goes to the top, as in the relay's order.
    this.commands.delete(event.id);
    this.commands.set(event.id, command);
    this.list.prepend(row);
    this.render();
  }

  clear() {
    this.commands.clear();
    this.list.replaceChildren();
    this.render();
  }

  /** Keeps the ages true; called every tick. */
  render(now = Date.now()) {
    for (const [id, c] of this.commands) {
      if (now - c.at > WINDOW_MS) {
        c.row.remove();
        this.commands.delete(id);
      }
    }
    while (this.commands.size > MAX_ROWS) {
      const [oldest] = this.commands.keys();
      this.commands.get(oldest).row.remove();
      this.commands.delete(oldest);
    }
    for (const c of this.commands.values()) {
      const words = stateWords(c.name, c.state, c.error);
      setText(c.row, `${c.by} · ${c.name} · ${words} · ${ago(Math.max(0, now - c.at))}`);
    }
    this.empty.hidden = this.commands.size > 0;
  }
}
