// history.js — the detail view's chart ranges: live (1 min) · 1 h · 24 h · 30 d.
//
// Live is chart.js's canvas fed by the socket, untouched. The longer ranges come from the relay's
// store (`GET /api/history`, the relay choosing the step) and are drawn here on their own canvas,
// shown in the live chart's place: the min–max band and the mean line on a true time axis, the
// line broken wherever two points are further apart than about two steps (the desktop was
// offline; docs/protocol.md, "Gaps"), and a read-out of the point under the pointer (hover, or
// tap on a touch screen; with the canvas focused, the arrow keys, Home and End). Where the relay
// says when and why the desktop was away (`offline`), the gap is a band drawn by its reason and
// the read-out inside it says so ("desktop asleep 22:10–06:45"; gaps.js); the keys stop on it
// too. A range shown is fetched again every 30 s. A relay without a store
// answers 404 `no_store`: the page says so once and stays on Live.
//
// Drawing is cheap on purpose: one canvas, redrawn in one animation frame only when the data,
// its size, the theme or the pointer's point changed; the points live in two typed arrays.
//
// The canvas carries, for the tests: data-range (1h|24h|30d), data-points (points drawn),
// data-gaps (breaks in the line), data-offline (the reasons of the offline bands drawn, in time
// order, space-separated) and data-state (loading|ready|error).

import { history as fetchHistory } from './api.js';
import { fitToDevice } from './canvas.js';
import { setText } from './dom.js';
import { percent } from './format.js';
import {
  drawGaps, gapAt, gapColors, gapWords, parseGaps,
} from './gaps.js';

/** Each long range: its span and how its axis is labelled. */
const RANGES = {
  '1h': { ms: 3_600_000, words: 'the last hour' },
  '24h': { ms: 86_400_000, words: 'the last 24 hours' },
  '30d': { ms: 30 * 86_400_000, words: 'the last 30 days' },
};
const REFRESH_MS = 30_000;
/** Raw points (one a second) further apart than this are not joined (docs/protocol.md). */
const RAW_GAP_MS = 5_000;
const PAD = { left: 38, right: 12, top: 10, bottom: 22 };
const GRID_STEPS = [0, 25, 50, 75, 100];
const TICKS = 4;

const $ = (id) => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`index.html lacks #${id}`);
  return el;
};

/** The gap limit for an answer's `step` ("raw" or ms). */
export function gapLimit(step) {
  return Number.isFinite(step) && step > 0 ? 2 * step + 1 : RAW_GAP_MS;
}

/**
 * The runs of `times` (ascending) with no two neighbours further apart than `limit`, as
 * [first, last] index pairs; breaks between runs are the chart's gaps.
 */
export function runsOf(times, count, limit) {
  const runs = [];
  let start = 0;
  for (let i = 0; i < count; i += 1) {
    if (i === count - 1 || times[i + 1] - times[i] > limit) {
      runs.push([start, i]);
      start = i + 1;
    }
  }
  return runs;
}

/**
 * The keyboard's stops: every point and every offline band, in time order; a point `i` is `i`,
 * band `g` is `-(g + 1)`.
 */
export function stopsOf(times, count, gaps) {
  const stops = new Int32Array(count + gaps.length);
  let g = 0;
  let k = 0;
  for (let i = 0; i < count; i += 1) {
    while (g < gaps.length && gaps[g].from <= times[i]) {
      stops[k] = -(g + 1);
      k += 1;
      g += 1;
    }
    stops[k] = i;
    k += 1;
  }
  for (; g < gaps.length; g += 1, k += 1) stops[k] = -(g + 1);
  return stops;
}

/** An axis label for `t`: a clock time for a day or less, a date beyond. */
function axisLabel(t, rangeMs) {
  const when = new Date(t);
  if (rangeMs <= 86_400_000) return when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return when.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

function readoutTime(t, rangeMs) {
  const when = new Date(t);
  const time = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (rangeMs <= 3_600_000) return time;
  return `${when.toLocaleDateString([], { month: 'short', day: 'numeric' })}, ${time}`;
}

export class HistoryView {
  /**
   * @param {{onLive: (live: boolean) => void}} hooks `onLive(false)` when a long range takes the
   *   live chart's place, `onLive(true)` when Live is back.
   */
  constructor({ onLive }) {
    this.onLive = onLive;
    this.group = $('chart-ranges');
    this.buttons = Array.from(this.group.querySelectorAll('button[data-range]'));
    this.liveCanvas = $('chart');
    this.canvas = $('history-chart');
    this.readout = $('chart-readout');
    this.note = $('chart-note');
    this.ctx = this.canvas.getContext('2d');
    this.range = 'live';
    this.credentials = null;
    this.noStore = false;
    this.timer = 0;
    this.generation = 0;
    /** The answer drawn: times and [min, mean, max] in typed arrays, its range and gap limit. */
    this.data = null;
    this.hover = -1;
    /** The offline band under the read-out (an index into data.gaps), or -1. */
    this.hoverGap = -1;
    /** Where the pointer is (css x on the canvas), or null: kept across a refresh. */
    this.pointerX = null;
    this.frame = 0;
    this.colors = null;
    this.draw = this.draw.bind(this);

    for (const button of this.buttons) {
      button.addEventListener('click', () => this.select(button.dataset.range));
    }
    this.canvas.addEventListener('pointermove', (e) => this.pointAt(e.offsetX));
    this.canvas.addEventListener('pointerdown', (e) => this.pointAt(e.offsetX));
    this.canvas.addEventListener('keydown', (e) => this.key(e));
    this.canvas.addEventListener('blur', () => this.pointAt(null));
    this.canvas.addEventListener('pointerleave', (e) => {
      if (e.pointerType === 'mouse') this.pointAt(null);
    });
    new ResizeObserver(() => this.invalidate()).observe(this.canvas);
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      this.colors = null;
      this.invalidate();
    });
    this.renderButtons();
  }

  /** The desktop shown ({id, token}; token '' = the cookie), or null when the view closes. */
  setDesktop(credentials) {
    const same = credentials !== null && this.credentials !== null
      && credentials.id === this.credentials.id && credentials.token === this.credentials.token;
    this.credentials = credentials;
    if (same) return;
    this.data = null;
    this.select('live');
  }

  /** Shows `range` (live | 1h | 24h | 30d). */
  select(range) {
    if (range !== 'live' && (!Object.hasOwn(RANGES, range) || this.noStore)) return;
    this.range = range;
    this.generation += 1;
    if (this.timer !== 0) window.clearInterval(this.timer);
    this.timer = 0;
    this.pointAt(null);
    const live = range === 'live';
    this.liveCanvas.hidden = !live;
    this.canvas.hidden = live;
    this.onLive(live);
    this.renderButtons();
    if (live || this.credentials === null) return;
    this.data = null;
    this.canvas.dataset.range = range;
    this.canvas.dataset.state = 'loading';
    this.canvas.dataset.points = '0';
    this.canvas.dataset.gaps = '0';
    this.canvas.dataset.offline = '';
    this.invalidate();
    this.load();
    this.timer = window.setInterval(() => this.load(), REFRESH_MS);
  }

  renderButtons() {
    this.group.dataset.range = this.range;
    for (const button of this.buttons) {
      const range = button.dataset.range;
      button.setAttribute('aria-pressed', String(range === this.range));
      button.disabled = range !== 'live' && this.noStore;
    }
  }

  async load() {
    const generation = this.generation;
    const range = this.range;
    const credentials = this.credentials;
    if (range === 'live' || credentials === null) return;
    const to = Date.now();
    const from = to - RANGES[range].ms;
    let answer;
    try {
      answer = await fetchHistory(credentials.id, from, to, null, credentials.token);
    } catch (err) {
      if (generation !== this.generation) return;
      if (err.code === 'no_store') {
        this.noStore = true;
        setText(this.note, 'History is not kept on this relay.');
        this.select('live');
        return;
      }
      this.canvas.dataset.state = 'error';
      setText(this.note, `Could not load the history: ${err.message}`);
      return;
    }
    if (generation !== this.generation) return;
    setText(this.note, '');
    this.data = this.parse(answer, from, to, RANGES[range].ms);
    this.canvas.dataset.state = 'ready';
    this.hover = -2; // the points moved: find the pointer's point afresh
    this.pointAt(this.pointerX);
    this.invalidate();
  }

  parse(answer, from, to, rangeMs) {
    const raw = Array.isArray(answer?.points) ? answer.points : [];
    const valid = raw.filter((p) => Array.isArray(p) && p.length >= 4
      && p.slice(0, 4).every(Number.isFinite));
    const n = valid.length;
    const times = new Float64Array(n);
    const lows = new Float32Array(n);
    const means = new Float32Array(n);
    const highs = new Float32Array(n);
    valid.forEach((p, i) => {
      [times[i], lows[i], means[i], highs[i]] = p;
    });
    const step = Number.isFinite(answer?.step) ? answer.step : null;
    const limit = gapLimit(step);
    const gaps = parseGaps(answer, from, to);
    return {
      times,
      lows,
      means,
      highs,
      n,
      from,
      to,
      rangeMs,
      step,
      runs: runsOf(times, n, limit),
      gaps,
      stops: stopsOf(times, n, gaps),
    };
  }

  /** The pointer is at css x `x` of the canvas (null: gone): the read-out follows its point. */
  pointAt(x) {
    this.pointerX = x;
    let index = -1;
    const d = this.data;
    const width = Math.max(1, this.canvas.clientWidth - PAD.left - PAD.right);
    const t = d === null || x === null ? NaN : d.from + ((x - PAD.left) / width) * (d.to - d.from);
    const gap = d === null ? -1 : gapAt(d.gaps, t);
    if (gap >= 0) {
      // Inside an offline band: it says when and why.
      this.show(-1, gap);
      return;
    }
    if (x !== null && d !== null && d.n > 0) {
      // The nearest point in time, if the pointer is not over a gap.
      let lo = 0;
      let hi = d.n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (d.times[mid] < t) lo = mid + 1;
        else hi = mid;
      }
      index = lo;
      if (lo > 0 && Math.abs(d.times[lo - 1] - t) < Math.abs(d.times[lo] - t)) index = lo - 1;
      const slack = Math.max(gapLimit(d.step), (d.to - d.from) / width * 4);
      if (Math.abs(d.times[index] - t) > slack) index = -1;
    }
    this.show(index);
  }

  /**
   * The keyboard: arrows move the read-out a stop — a point or an offline band — (Shift: ten),
   * Home/End, Escape hides it.
   */
  key(event) {
    const d = this.data;
    if (d === null || d.stops.length === 0) return;
    const last = d.stops.length - 1;
    const current = this.hoverGap >= 0 ? -(this.hoverGap + 1) : this.hover;
    const shown = this.hover >= 0 || this.hoverGap >= 0;
    const at = shown ? d.stops.indexOf(current) : last + 1;
    const by = event.shiftKey ? 10 : 1;
    let stop;
    switch (event.key) {
      case 'ArrowLeft': stop = Math.max(0, at - by); break;
      case 'ArrowRight': stop = shown ? Math.min(last, at + by) : last; break;
      case 'Home': stop = 0; break;
      case 'End': stop = last; break;
      case 'Escape': stop = -1; break;
      default: return;
    }
    event.preventDefault();
    this.pointerX = null;
    if (stop < 0) this.show(-1);
    else if (d.stops[stop] >= 0) this.show(d.stops[stop]);
    else this.show(-1, -d.stops[stop] - 1);
  }

  /** Shows the read-out of point `index`, or of offline band `gap` (both -1: none). */
  show(index, gap = -1) {
    const d = this.data;
    if (index === this.hover && gap === this.hoverGap) return;
    this.hover = index;
    this.hoverGap = gap;
    delete this.readout.dataset.reason;
    if (gap >= 0) {
      const band = d.gaps[gap];
      setText(this.readout, gapWords(band));
      this.readout.dataset.ts = String(band.went);
      this.readout.dataset.reason = band.reason;
      this.readout.hidden = false;
    } else if (index < 0) {
      this.readout.hidden = true;
      setText(this.readout, '');
      delete this.readout.dataset.ts;
    } else {
      const lo = percent(d.lows[index]);
      const mean = percent(d.means[index]);
      const hi = percent(d.highs[index]);
      setText(this.readout, `${readoutTime(d.times[index], d.rangeMs)} · min ${lo}% · mean ${mean}% · max ${hi}%`);
      this.readout.dataset.ts = String(d.times[index]);
      this.readout.hidden = false;
    }
    this.invalidate();
  }

  invalidate() {
    if (this.frame === 0) this.frame = requestAnimationFrame(this.draw);
  }

  readColors() {
    const style = getComputedStyle(this.canvas);
    const get = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    return {
      line: get('--chart-line', '#2563eb'),
      band: get('--chart-band', 'rgba(37, 99, 235, 0.22)'),
      grid: get('--chart-grid', 'rgba(127, 127, 127, 0.25)'),
      text: get('--chart-text', '#6b7280'),
      font: style.fontFamily || 'sans-serif',
      gaps: gapColors(style),
    };
  }

  draw() {
    this.frame = 0;
    const canvas = this.canvas;
    if (canvas.hidden) return;
    const fitted = fitToDevice(canvas);
    if (fitted === null) return;
    const { cssWidth, cssHeight, dpr } = fitted;
    if (this.colors === null) this.colors = this.readColors();
    const colors = this.colors;
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssWidth, cssHeight);
    const left = PAD.left;
    const top = PAD.top;
    const width = Math.max(1, cssWidth - PAD.left - PAD.right);
    const height = Math.max(1, cssHeight - PAD.top - PAD.bottom);
    const crisp = (v) => (Math.round(v * dpr) + 0.5) / dpr;
    const d = this.data;
    const rangeMs = RANGES[this.range]?.ms ?? 3_600_000;
    const from = d?.from ?? Date.now() - rangeMs;
    const to = d?.to ?? Date.now();
    const xOf = (t) => left + (width * (t - from)) / (to - from);
    const yOf = (v) => top + height * (1 - Math.min(100, Math.max(0, v)) / 100);

    // Grid: percent lines, and time ticks at even fractions of the range.
    ctx.lineWidth = 1;
    ctx.strokeStyle = colors.grid;
    ctx.fillStyle = colors.text;
    ctx.font = `11px ${colors.font}`;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.beginPath();
    for (const pct of GRID_STEPS) {
      const y = crisp(yOf(pct));
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      if (pct % 50 === 0) ctx.fillText(`${pct}%`, left - 6, y);
    }
    ctx.stroke();
    ctx.textBaseline = 'top';
    for (let k = 0; k <= TICKS; k += 1) {
      const t = from + ((to - from) * k) / TICKS;
      ctx.textAlign = k === 0 ? 'left' : k === TICKS ? 'right' : 'center';
      ctx.fillText(k === TICKS ? 'now' : axisLabel(t, rangeMs), xOf(t), top + height + 6);
    }

    if (d !== null && d.gaps.length > 0) {
      ctx.save();
      ctx.beginPath();
      ctx.rect(left, top, width, height);
      ctx.clip();
      drawGaps(ctx, d.gaps, xOf, top, height, colors.gaps, this.hoverGap);
      ctx.restore();
    }
    if (d === null || (d.n === 0 && d.gaps.length === 0)) {
      ctx.fillStyle = colors.text;
      ctx.font = `13px ${colors.font}`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      const words = d === null ? 'Loading the history…' : 'No history in this period';
      ctx.fillText(words, left + width / 2, top + height / 2);
      this.publish(0, 0);
      return;
    }
    if (d.n === 0) {
      this.publish(0, 0);
      return;
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top - 3, width, height + 6);
    ctx.clip();
    ctx.lineJoin = 'round';
    for (const [a, b] of d.runs) {
      // The band: along the highs, back along the lows.
      ctx.beginPath();
      const pad = a === b ? Math.max(1, width / (to - from) * gapLimit(d.step) / 4) : 0;
      ctx.moveTo(xOf(d.times[a]) - pad, yOf(d.highs[a]));
      for (let i = a; i <= b; i += 1) ctx.lineTo(xOf(d.times[i]), yOf(d.highs[i]));
      ctx.lineTo(xOf(d.times[b]) + pad, yOf(d.highs[b]));
      ctx.lineTo(xOf(d.times[b]) + pad, yOf(d.lows[b]));
      for (let i = b; i >= a; i -= 1) ctx.lineTo(xOf(d.times[i]), yOf(d.lows[i]));
      ctx.lineTo(xOf(d.times[a]) - pad, yOf(d.lows[a]));
      ctx.closePath();
      ctx.fillStyle = colors.band;
      ctx.fill();
      // The mean line.
      ctx.beginPath();
      ctx.moveTo(xOf(d.times[a]) - pad, yOf(d.means[a]));
      for (let i = a + 1; i <= b; i += 1) ctx.lineTo(xOf(d.times[i]), yOf(d.means[i]));
      if (a === b) ctx.lineTo(xOf(d.times[a]) + pad, yOf(d.means[a]));
      ctx.strokeStyle = colors.line;
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
    if (this.hover >= 0) {
      const x = xOf(d.times[this.hover]);
      ctx.strokeStyle = colors.text;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(crisp(x), top);
      ctx.lineTo(crisp(x), top + height);
      ctx.stroke();
      ctx.fillStyle = colors.line;
      ctx.beginPath();
      ctx.arc(x, yOf(d.means[this.hover]), 3.5, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.restore();
    this.publish(d.n, d.runs.length - 1);
  }

  /** Keeps the canvas's data-* and its label true to what is drawn. */
  publish(points, gaps) {
    const canvas = this.canvas;
    if (canvas.dataset.points !== String(points)) canvas.dataset.points = String(points);
    if (canvas.dataset.gaps !== String(gaps)) canvas.dataset.gaps = String(gaps);
    const words = RANGES[this.range]?.words ?? '';
    const d = this.data;
    const reasons = d === null ? '' : d.gaps.map((g) => g.reason).join(' ');
    if (canvas.dataset.offline !== reasons) canvas.dataset.offline = reasons;
    let label = `CPU use over ${words}: no data in this period`;
    if (d !== null && d.n > 0) {
      let low = Infinity;
      let high = -Infinity;
      let sum = 0;
      for (let i = 0; i < d.n; i += 1) {
        low = Math.min(low, d.lows[i]);
        high = Math.max(high, d.highs[i]);
        sum += d.means[i];
      }
      label = `CPU use over ${words}: lowest ${Math.round(low)}%, average ${Math.round(sum / d.n)}%, `
        + `highest ${Math.round(high)}%${gaps > 0 ? `, ${gaps} ${gaps === 1 ? 'gap' : 'gaps'} while offline` : ''}`;
    }
    if (d !== null && d.gaps.length > 0) {
      // The reasons in words too, for a screen reader (the first few).
      const told = d.gaps.slice(0, 3).map(gapWords).join('; ');
      label += `; ${told}${d.gaps.length > 3 ? ` and ${d.gaps.length - 3} more offline periods` : ''}`;
    }
    if (canvas.getAttribute('aria-label') !== label) canvas.setAttribute('aria-label', label);
  }
}
