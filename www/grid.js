// grid.js — the signed-in page's grid: one card per desktop the person may see, fed by the one
// fleet WebSocket (history, presence, then every desktop's frames wrapped in `forward`).
//
// Built to stay smooth with hundreds of desktops each reporting every second:
// - Messages only update the model (a Map of desks) and mark what changed; the DOM is written in
//   one requestAnimationFrame callback per frame, however many messages arrived in between.
// - Each card's elements are made once and reused; texts are rewritten only when they change
//   (dom.js) and cards are moved only when the order really changes (a desktop going online or
//   offline, a new id, the filter).
// - Nothing is read from layout in that callback: card sizes come from a ResizeObserver and
//   on-screen state from an IntersectionObserver; only sparklines on screen whose samples or time
//   window moved are redrawn, each on its own small canvas. Cards off screen are skipped by the
//   browser too (`content-visibility: auto` in style.css).
// - Samples live in fixed-size ring buffers, so memory does not grow with time.
// - A card's line covers the last hour: sparkhistory.js fetches the hour from the relay's store
//   (4 requests at a time) when the card first comes on screen; live samples are appended, merged
//   to one per 4 s so the hour fits the ring.
//
// Order: online first, then added desktops waiting for their first connection, then offline;
// by id within each (natural order: desk-2 before desk-10).

import { setText } from './dom.js';
import { ago, bytes, clockTime, duration, percent } from './format.js';
import { SampleRing } from './ring.js';
import { SPARK_WINDOW_MS, drawSparkline, sparkColors } from './sparkline.js';
import { SparkHistory } from './sparkhistory.js';
import { OFFLINE_WORDS, WAITING_WORDS } from './words.js';

/** Samples kept per desktop: the sparkline's hour at one per MERGE_MS, plus a little. */
const RING_CAPACITY = 960;
/** Live samples closer together than this share one slot of the ring (the newest value wins). */
const MERGE_MS = 4_000;
/** Samples further apart than this (or 2.5 reporting intervals, or 2 history steps) are not
 * joined by a line. */
const GAP_MS = 5_000;
/** A sparkline redraws at least this often while on screen (the window slides with time). */
const SLIDE_MS = 2_000;
/** Status texts ("since … · 3 min ago") are refreshed this often. */
const SINCE_MS = 10_000;

const RANK = { online: 0, waiting: 1, offline: 2 };
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

export class FleetGrid {
  /**
   * @param {{list: HTMLElement, filter: HTMLInputElement, count: HTMLElement,
   *          empty: HTMLElement}} parts
   */
  constructor({ list, filter, count, empty }) {
    this.list = list;
    this.filterInput = filter;
    this.countEl = count;
    this.emptyEl = empty;
    /** @type {Map<string, object>} */
    this.desks = new Map();
    this.filter = '';
    this.dirty = new Set(); // desks whose card text changed
    this.orderDirty = true;
    this.shown = false;
    this.frame = 0;
    this.colors = null;
    this.frameCallback = () => this.render();
    this.generation = 0;
    this.spark = new SparkHistory({
      onPoints: (id, points, step) => this.hour(id, points, step),
      isWanted: (id) => this.desks.get(id)?.onScreen === true,
    });

    this.onScreen = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const desk = entry.target.desk;
        if (desk === undefined) continue;
        desk.onScreen = entry.isIntersecting;
        if (desk.onScreen) {
          desk.sparkDirty = true;
          this.spark.want(desk.id);
        }
      }
      this.schedule();
    }, { rootMargin: '200px 0px' });
    this.sizes = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const desk = entry.target.desk;
        if (desk === undefined) continue;
        desk.width = entry.contentRect.width;
        desk.height = entry.contentRect.height;
        desk.sparkDirty = true;
      }
      this.schedule();
    });
    const scheme = window.matchMedia('(prefers-color-scheme: dark)');
    scheme.addEventListener('change', () => {
      this.colors = null;
      for (const desk of this.desks.values()) desk.sparkDirty = true;
      this.schedule();
    });

    filter.addEventListener('input', () => {
      this.filter = filter.value.trim().toLowerCase();
      this.orderDirty = true;
      this.schedule();
    });
    filter.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && filter.value !== '') {
        filter.value = '';
        filter.dispatchEvent(new Event('input'));
      }
    });

    let ticks = 0;
    window.setInterval(() => {
      ticks += 1;
      if (!this.shown) return;
      const now = Date.now();
      for (const desk of this.desks.values()) {
        if (desk.onScreen && desk.ring.length > 0 && now - desk.drawnAt >= SLIDE_MS) {
          desk.sparkDirty = true;
        }
        if (ticks % (SINCE_MS / 1000) === 0) this.dirty.add(desk);
      }
      this.schedule();
    }, 1000);
  }

  /** Shows or hides the grid; while hidden the model is kept up to date but nothing is drawn. */
  setShown(shown) {
    this.shown = shown;
    if (shown) {
      for (const desk of this.desks.values()) {
        this.dirty.add(desk);
        desk.sparkDirty = true;
      }
      this.schedule();
    }
  }

  /** Forgets every desktop (signed out, or the fleet connection starts afresh). */
  clear() {
    for (const desk of this.desks.values()) this.dropElements(desk);
    this.desks.clear();
    this.spark.reset();
    this.dirty.clear();
    this.orderDirty = true;
    this.schedule();
  }

  /**
   * The fleet connection was (re)established: the relay sends every desktop afresh. Cards stay
   * up meanwhile (no empty flash); those it does not mention within `graceMs` are dropped.
   */
  refreshed(graceMs = 5_000) {
    this.generation += 1;
    const generation = this.generation;
    window.setTimeout(() => {
      if (generation !== this.generation) return;
      for (const desk of Array.from(this.desks.values())) {
        if (desk.generation !== generation && !desk.local) this.remove(desk.id);
      }
    }, graceMs);
  }

  /** The ids on the grid, in the order shown (for the page and the tests). */
  ids() {
    return Array.from(this.list.querySelectorAll('a.desk'), (a) => a.dataset.id);
  }

  /** An id just added from the page: shown as waiting until the relay says more. */
  addWaiting(id) {
    const desk = this.desk(id);
    desk.local = true;
    if (desk.state === 'unknown') {
      desk.state = 'waiting';
      this.changed(desk, true);
    }
  }

  /** One message of the fleet connection. */
  receive(message) {
    const id = message.client_id;
    if (typeof id !== 'string') return;
    if (message.event === 'history' || message.event === 'presence' || message.event === 'forward') {
      this.desk(id).generation = this.generation;
    }
    switch (message.event) {
      case 'history':
        this.history(this.desk(id), message.samples);
        break;
      case 'presence':
        this.presence(this.desk(id), message);
        break;
      case 'forward':
        if (message.message !== null && typeof message.message === 'object'
            && message.message.event === 'cpu') {
          this.sample(this.desk(id), message.message, Date.now());
        }
        break;
      case 'unwatched':
        this.remove(id);
        break;
      default:
        break;
    }
  }

  desk(id) {
    let desk = this.desks.get(id);
    if (desk === undefined) {
      desk = {
        id,
        state: 'unknown', // online | offline | waiting | unknown (no presence yet)
        since: null,
        reason: null,
        cpu: null,
        memory: null,
        /** The reporting interval the relay asks of it (`presence.interval_ms`). */
        intervalMs: null,
        /** The cadence of its latest sample, and whether that sample came before anyone
         * watched (from the history: the idle interval). */
        cadenceMs: null,
        unwatched: false,
        ring: new SampleRing(RING_CAPACITY),
        /** When the ring's newest slot was opened (see MERGE_MS). */
        slotStart: -Infinity,
        /** The step of the hour fetched from the store (ms), or null before (or without) it. */
        historyStep: null,
        /** Arrival minus the desktop's `ts`: its clock's offset from ours (plus the transit). */
        skew: 0,
        el: null,
        onScreen: false,
        sparkDirty: true,
        drawnAt: 0,
        width: 0,
        height: 0,
        points: -1,
        /** Which fleet connection last told of it (see refreshed()). */
        generation: this.generation,
        /** Added from this page: kept even before the relay mentions it. */
        local: false,
      };
      this.desks.set(id, desk);
      this.orderDirty = true;
      this.dirty.add(desk);
      this.schedule();
    }
    return desk;
  }

  remove(id) {
    const desk = this.desks.get(id);
    if (desk === undefined) return;
    this.dropElements(desk);
    this.desks.delete(id);
    this.dirty.delete(desk);
    this.orderDirty = true;
    this.schedule();
  }

  history(desk, samples) {
    if (!Array.isArray(samples)) return;
    const valid = samples.filter((s) => s !== null && typeof s === 'object' && Number.isFinite(s.value));
    if (valid.length === 0) return;
    const now = Date.now();
    const last = valid[valid.length - 1];
    // Samples without `ts` (the prototype's) are taken as one a second, ending now.
    const times = valid.map((s, i) => (Number.isFinite(s.ts)
      ? s.ts : now - desk.skew - (valid.length - 1 - i) * 1000));
    // What the ring holds from then on is replaced; the hour from the store before it stays.
    desk.ring.dropFrom(times[0]);
    desk.slotStart = -Infinity;
    valid.forEach((s, i) => this.append(desk, times[i], s.value));
    this.figures(desk, last);
    // The history's cadence is the interval the desktop reported at before this grid came.
    const gap = valid.length > 1 && Number.isFinite(last.ts) && Number.isFinite(valid[valid.length - 2].ts)
      ? last.ts - valid[valid.length - 2].ts : 0;
    desk.cadenceMs = gap > 0 ? gap : desk.cadenceMs;
    desk.unwatched = gap > 1_500;
    desk.sparkDirty = true;
    this.changed(desk, false);
  }

  sample(desk, cpu, arrival) {
    if (!Number.isFinite(cpu.value)) return;
    let t = arrival - desk.skew;
    if (Number.isFinite(cpu.ts)) {
      desk.skew = arrival - cpu.ts;
      t = cpu.ts;
    }
    this.append(desk, t, cpu.value);
    this.figures(desk, cpu);
    desk.cadenceMs = desk.intervalMs;
    desk.unwatched = false;
    desk.sparkDirty = true;
    if (desk.state !== 'online' && desk.state !== 'offline') {
      // Samples before the presence: the desktop is evidently there.
      desk.state = 'online';
      this.changed(desk, true);
    } else {
      this.changed(desk, false);
    }
  }

  /** Appends a sample to the card's ring, merging it into the newest slot if within MERGE_MS. */
  append(desk, time, value) {
    const t = Math.max(time, desk.ring.lastTime());
    if (desk.ring.length > 0 && t - desk.slotStart < MERGE_MS) {
      desk.ring.replaceLast(t, value);
    } else {
      desk.ring.push(t, value);
      desk.slotStart = t;
    }
  }

  /** The last hour from the store for `id` (`[ts, min, mean, max]` points): the mean goes in
   * before the samples the ring already holds. */
  hour(id, points, step) {
    const desk = this.desks.get(id);
    if (desk === undefined) return;
    const ring = desk.ring;
    const firstKept = ring.length > 0 ? ring.timeAt(0) : Infinity;
    const kept = [];
    for (let i = 0; i < ring.length; i += 1) kept.push([ring.timeAt(i), ring.valueAt(i)]);
    ring.clear();
    for (const p of points) {
      if (Array.isArray(p) && Number.isFinite(p[0]) && Number.isFinite(p[2]) && p[0] < firstKept
          && p[0] >= ring.lastTime()) ring.push(p[0], p[2]);
    }
    for (const [t, v] of kept) ring.push(Math.max(t, ring.lastTime()), v);
    desk.historyStep = step;
    desk.sparkDirty = true;
    this.schedule();
  }

  figures(desk, sample) {
    desk.cpu = sample.value;
    const m = sample.memory;
    desk.memory = m !== null && typeof m === 'object' && Number.isFinite(m.used)
      && Number.isFinite(m.total) && m.total > 0 ? { used: m.used, total: m.total } : null;
  }

  presence(desk, message) {
    let state = message.desktop === 'online' ? 'online' : 'offline';
    if (state === 'offline' && message.waiting === true) state = 'waiting';
    const reorder = state !== desk.state;
    desk.state = state;
    desk.since = Number.isFinite(message.since) && message.since > 0 ? message.since : null;
    desk.reason = state === 'offline' && Object.hasOwn(OFFLINE_WORDS, message.reason)
      ? message.reason : null;
    if (Number.isFinite(message.interval_ms) && message.interval_ms > 0) {
      desk.intervalMs = message.interval_ms;
    }
    this.changed(desk, reorder);
  }

  changed(desk, reorder) {
    if (reorder) this.orderDirty = true;
    this.dirty.add(desk);
    this.schedule();
  }

  schedule() {
    if (this.frame === 0 && this.shown) this.frame = requestAnimationFrame(this.frameCallback);
  }

  // ---- rendering (one animation frame) -------------------------------------------------------

  render() {
    this.frame = 0;
    if (!this.shown) return;
    if (this.orderDirty) this.reorder();
    for (const desk of this.dirty) {
      if (desk.el !== null) this.renderCard(desk);
    }
    this.dirty.clear();
    const now = Date.now();
    for (const desk of this.desks.values()) {
      if (desk.sparkDirty && desk.onScreen && desk.el !== null && desk.width > 0) {
        this.renderSpark(desk, now);
      }
    }
  }

  matches(desk) {
    return this.filter === '' || desk.id.toLowerCase().includes(this.filter);
  }

  reorder() {
    this.orderDirty = false;
    const all = Array.from(this.desks.values());
    const shown = all.filter((d) => this.matches(d));
    shown.sort((a, b) => (RANK[a.state] ?? 1) - (RANK[b.state] ?? 1) || collator.compare(a.id, b.id));
    let node = this.list.firstChild;
    for (const desk of shown) {
      if (desk.el === null) this.build(desk);
      if (desk.el.item === node) {
        node = node.nextSibling;
      } else {
        this.list.insertBefore(desk.el.item, node);
      }
    }
    while (node !== null) {
      const next = node.nextSibling;
      node.remove();
      node = next;
    }
    const total = all.length;
    const word = total === 1 ? 'desktop' : 'desktops';
    setText(this.countEl, shown.length === total ? `${total} ${word}` : `${shown.length} of ${total} ${word}`);
    this.emptyEl.hidden = total !== 0;
  }

  build(desk) {
    const item = document.createElement('div');
    item.className = 'desk-item';
    item.setAttribute('role', 'listitem');
    const a = document.createElement('a');
    a.className = 'desk';
    a.href = `#id=${encodeURIComponent(desk.id)}`;
    a.dataset.id = desk.id;
    const head = document.createElement('span');
    head.className = 'desk-head';
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.setAttribute('aria-hidden', 'true');
    const name = document.createElement('span');
    name.className = 'desk-id';
    name.textContent = desk.id;
    head.append(dot, name);
    const status = document.createElement('span');
    status.className = 'desk-status';
    const figure = document.createElement('span');
    figure.className = 'desk-figure';
    const cpu = document.createElement('span');
    cpu.className = 'desk-cpu';
    const unit = document.createElement('span');
    unit.className = 'unit';
    unit.textContent = '% CPU';
    figure.append(cpu, unit);
    const spark = document.createElement('canvas');
    spark.className = 'desk-spark';
    spark.dataset.points = '0';
    spark.setAttribute('aria-hidden', 'true');
    spark.desk = desk;
    const memory = document.createElement('span');
    memory.className = 'desk-memory';
    const memText = document.createElement('span');
    memText.className = 'desk-memory-text';
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.setAttribute('aria-hidden', 'true');
    const fill = document.createElement('span');
    fill.className = 'bar-fill';
    bar.append(fill);
    memory.append(memText, bar);
    a.append(head, status, figure, spark, memory);
    item.append(a);
    desk.el = { item, a, status, cpu, spark, memory, memText, fill, last: {} };
    this.onScreen.observe(spark);
    this.sizes.observe(spark);
  }

  dropElements(desk) {
    if (desk.el === null) return;
    this.onScreen.unobserve(desk.el.spark);
    this.sizes.unobserve(desk.el.spark);
    desk.el.item.remove();
    desk.el = null;
  }

  renderCard(desk) {
    const el = desk.el;
    const last = el.last;
    if (last.state !== desk.state || last.reason !== desk.reason) {
      last.state = desk.state;
      last.reason = desk.reason;
      el.a.dataset.state = desk.state;
      el.a.dataset.reason = desk.reason ?? '';
    }
    setText(el.status, statusWords(desk));
    setText(el.cpu, desk.cpu === null ? '–' : percent(desk.cpu));
    const m = desk.memory;
    const memoryKey = m === null ? '' : `${m.used}/${m.total}`;
    if (last.memory !== memoryKey) {
      last.memory = memoryKey;
      el.memory.hidden = m === null;
      if (m !== null) {
        const fraction = Math.min(1, m.used / m.total);
        setText(el.memText, `${bytes(m.used)} of ${bytes(m.total)} memory`);
        el.fill.style.setProperty('--level', String(fraction));
        el.fill.classList.toggle('hot', fraction >= 0.85);
      }
    }
  }

  renderSpark(desk, now) {
    desk.sparkDirty = false;
    desk.drawnAt = now;
    const canvas = desk.el.spark;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(desk.width * dpr);
    const h = Math.round(desk.height * dpr);
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    if (this.colors === null) this.colors = sparkColors(this.list);
    const gapMs = Math.max(GAP_MS, 2.5 * (desk.intervalMs ?? 1_000),
      desk.historyStep === null ? 0 : 2 * desk.historyStep + 1);
    const points = drawSparkline(canvas, desk.width, desk.height, dpr, desk.ring,
      now - desk.skew, this.colors, SPARK_WINDOW_MS, gapMs);
    if (points !== desk.points) {
      desk.points = points;
      canvas.dataset.points = String(points);
    }
  }
}

/** A card's status line: online for how long, or offline and why, or waiting. */
/** How often the card's figures change: "live" at one a second, else the interval — with why,
 * for a sample from before anyone watched (issue 14's words). */
function cadenceWords(desk) {
  const ms = desk.cadenceMs;
  if (ms === null || ms <= 1_000) return 'live';
  const every = `updates every ${Math.round(ms / 1000)} s`;
  return desk.unwatched ? `${every} — nobody was watching` : every;
}

function statusWords(desk) {
  const since = desk.since;
  switch (desk.state) {
    case 'online': {
      const online = since !== null && Date.now() - since >= 60_000
        ? `online for ${duration(Date.now() - since)}` : 'online';
      return `${online} · ${cadenceWords(desk)}`;
    }
    case 'waiting':
      return WAITING_WORDS;
    case 'offline': {
      const words = desk.reason !== null ? OFFLINE_WORDS[desk.reason] : 'offline';
      return since === null ? words : `${words} · since ${clockTime(since)} · ${ago(Date.now() - since)}`;
    }
    default:
      return 'status unknown';
  }
}
