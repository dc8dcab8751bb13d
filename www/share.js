// share.js — the detail view's "Share view-only link" card (operators of a signed-in page).
//
// Creates a link for the desktop shown (`POST /api/shares` with a lifetime from 15 minutes to 7
// days), shows it with a Copy button, and lists the desktop's live links with a Revoke button
// each (`GET /api/shares?desktop=`, `DELETE /api/shares/{id}`). The relay decides who may: its
// refusal is shown as it words it. The list is fetched when the card opens, after every change,
// and once a minute while it stays open (links expire).

import { createShare, listShares, revokeShare } from './api.js';
import { copyText } from './copy.js';
import { setText } from './dom.js';
import { clockTime } from './format.js';

const REFRESH_MS = 60_000;

const $ = (id) => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`index.html lacks #${id}`);
  return el;
};

export class ShareControl {
  constructor() {
    this.card = $('share-card');
    this.ttl = $('share-ttl');
    this.create = $('share-create');
    this.made = $('share-made');
    this.url = $('share-url');
    this.copy = $('share-copy');
    this.status = $('share-status');
    this.list = $('share-list');
    this.desktop = null;
    this.timer = 0;
    this.create.addEventListener('click', () => this.createLink());
    this.copy.addEventListener('click', async () => {
      const copied = await copyText(this.url.value, this.url);
      this.say(copied ? 'Link copied.' : 'Link selected: press Ctrl+C (⌘C) to copy it.');
    });
  }

  /** Shows the card for desktop `id`, or hides it (null). */
  setDesktop(id) {
    if (id === this.desktop) return;
    this.desktop = id;
    this.card.hidden = id === null;
    this.made.hidden = true;
    this.url.value = '';
    this.say('');
    this.list.replaceChildren();
    if (this.timer !== 0) window.clearInterval(this.timer);
    this.timer = 0;
    if (id === null) return;
    this.refresh();
    this.timer = window.setInterval(() => this.refresh(), REFRESH_MS);
  }

  async createLink() {
    const desktop = this.desktop;
    if (desktop === null) return;
    this.create.disabled = true;
    try {
      const made = await createShare(desktop, Number(this.ttl.value));
      if (desktop !== this.desktop) return;
      this.url.value = made.url;
      this.made.hidden = false;
      this.say(`Link created, valid until ${clockTime(made.expires)}.`);
      this.url.focus();
      this.url.select();
      await this.refresh();
    } catch (err) {
      this.say(`Could not create a link: ${err.message}`, true);
    } finally {
      this.create.disabled = false;
    }
  }

  async refresh() {
    const desktop = this.desktop;
    if (desktop === null) return;
    let answer;
    try {
      answer = await listShares(desktop);
    } catch (err) {
      if (desktop === this.desktop) this.say(`Could not list the links: ${err.message}`, true);
      return;
    }
    if (desktop !== this.desktop) return;
    const shares = Array.isArray(answer?.shares) ? answer.shares : [];
    const items = shares.map((share) => this.item(share));
    if (items.length === 0) {
      const none = document.createElement('li');
      none.className = 'share-none';
      none.textContent = 'No live links.';
      items.push(none);
    }
    this.list.replaceChildren(...items);
  }

  item(share) {
    const li = document.createElement('li');
    li.dataset.shareId = String(share.id);
    const text = document.createElement('span');
    text.className = 'share-text';
    const by = typeof share.by === 'string' ? share.by : 'someone';
    text.textContent = `by ${by} · until ${clockTime(share.expires)}`;
    const revoke = document.createElement('button');
    revoke.type = 'button';
    revoke.className = 'btn small share-revoke';
    revoke.textContent = 'Revoke';
    revoke.setAttribute('aria-label', `Revoke the link by ${by}, valid until ${clockTime(share.expires)}`);
    revoke.addEventListener('click', async () => {
      revoke.disabled = true;
      try {
        await revokeShare(share.id);
        this.say('Link revoked: whoever has it is cut off within seconds.');
      } catch (err) {
        this.say(`Could not revoke the link: ${err.message}`, true);
        revoke.disabled = false;
      }
      await this.refresh();
    });
    li.append(text, revoke);
    return li;
  }

  say(text, bad = false) {
    setText(this.status, text);
    this.status.classList.toggle('bad', bad);
  }
}
