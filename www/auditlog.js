// auditlog.js — the detail view's "Log" panel (operators): what people did to this desktop.
//
// The relay's audit log (`GET /api/audit?desktop=&since=`, operators of the desktop only) comes
// oldest first, at most 1,000 records a page; the panel asks for the last 7 days, follows `more`
// for a few pages, and lists the newest 200 records newest first, one line each:
// "12:03 · alice · beep · done". It is fetched when the panel opens and every 15 s while it
// stays open, never while closed; a relay without a store (404 `no_store`) is said so.

import { audit } from './api.js';
import { setText } from './dom.js';
import { clockTime } from './format.js';

const REFRESH_MS = 15_000;
const SINCE_MS = 7 * 86_400_000;
const MAX_PAGES = 5;
const SHOWN = 200;

const $ = (id) => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`index.html lacks #${id}`);
  return el;
};

/** One record as a person reads it. */
export function recordWords(record) {
  const by = typeof record.by === 'string' ? record.by : 'someone';
  const detail = record.detail !== null && typeof record.detail === 'object' ? record.detail : {};
  const parts = [clockTime(record.ts), by];
  if (record.kind === 'command') {
    parts.push(typeof detail.command === 'string' ? detail.command : 'command');
    if (typeof detail.outcome === 'string') parts.push(detail.outcome);
  } else if (record.kind === 'token_refused') {
    parts.push('refused');
    if (typeof detail.reason === 'string') parts.push(detail.reason);
  } else {
    parts.push(String(record.kind).replaceAll('_', ' '));
  }
  return parts.join(' · ');
}

export class AuditLog {
  constructor() {
    this.card = $('log-card');
    this.toggle = $('log-toggle');
    this.body = $('log-body');
    this.list = $('log-list');
    this.status = $('log-status');
    this.credentials = null;
    this.open = false;
    this.timer = 0;
    this.generation = 0;
    this.toggle.addEventListener('click', () => this.setOpen(!this.open));
  }

  /** Shows the panel for `credentials` ({id, token}), or hides it (null: not an operator). */
  setDesktop(credentials) {
    const same = credentials !== null && this.credentials !== null
      && credentials.id === this.credentials.id && credentials.token === this.credentials.token;
    if (same) return;
    this.credentials = credentials;
    this.card.hidden = credentials === null;
    this.list.replaceChildren();
    setText(this.status, '');
    this.setOpen(false);
  }

  setOpen(open) {
    this.open = open && this.credentials !== null;
    this.toggle.setAttribute('aria-expanded', String(this.open));
    this.body.hidden = !this.open;
    this.generation += 1;
    if (this.timer !== 0) window.clearInterval(this.timer);
    this.timer = 0;
    if (!this.open) return;
    this.refresh();
    this.timer = window.setInterval(() => this.refresh(), REFRESH_MS);
  }

  async refresh() {
    const generation = this.generation;
    const { id, token } = this.credentials;
    const records = [];
    let since = Date.now() - SINCE_MS;
    try {
      for (let page = 0; page < MAX_PAGES; page += 1) {
        const answer = await audit(id, since, token);
        if (generation !== this.generation) return;
        const got = Array.isArray(answer?.records) ? answer.records : [];
        // Records of the last millisecond of a page come again on the next one.
        const seen = new Set(records.map((r) => JSON.stringify(r)));
        for (const r of got) if (!seen.has(JSON.stringify(r))) records.push(r);
        if (answer?.more !== true || got.length === 0) break;
        since = got[got.length - 1].ts;
      }
    } catch (err) {
      if (generation !== this.generation) return;
      setText(this.status, err.code === 'no_store'
        ? 'The log is not kept on this relay.'
        : `Could not load the log: ${err.message}`);
      return;
    }
    const newest = records.filter((r) => r !== null && typeof r === 'object' && Number.isFinite(r.ts))
      .slice(-SHOWN).reverse();
    this.list.replaceChildren(...newest.map((r) => {
      const li = document.createElement('li');
      li.dataset.kind = String(r.kind);
      li.textContent = recordWords(r);
      if (typeof r.from === 'string') li.title = `from ${r.from}`;
      return li;
    }));
    setText(this.status, newest.length === 0 ? 'Nothing in the last 7 days.' : '');
  }
}
