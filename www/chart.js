// chart.js — the live CPU chart: a small canvas line chart of the last 60 seconds.
//
// Written for a tab that stays open for days: samples live in a fixed-size ring buffer (no growing
// arrays), nothing is allocated per sample, and the canvas is redrawn in a requestAnimationFrame
// callback only when something changed — a new sample, time moving the window on (tick), a resize,
// a devicePixelRatio or colour-scheme change. The y axis is fixed at 0–100 % so the picture never
// rescales under the reader. Gaps longer than a few seconds (desktop offline) break the line rather
// than drawing a straight line across time when nothing was measured.
//
// The canvas carries data-points = the number of samples inside the visible window, which the
// browser tests read.

import { fitToDevice } from './canvas.js';
import { SampleRing } from './ring.js';

const WINDOW_MS = 60_000;
/** 600 slots cover the window at up to 10 samples a second; faster samples are merged. */
const CAPACITY = 600;
/** Samples further apart than this are not joined by a line. */
const GAP_MS = 5_000;
const PAD = { left: 38, right: 12, top: 10, bottom: 22 };
const GRID_STEPS = [0, 25, 50, 75, 100];

export class CpuChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{windowMs?: number, capacity?: number, now?: () => number}} [options]
   *   `now` is the clock the sample times are on (default performance.now()).
   */
  constructor(canvas, options = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.windowMs = options.windowMs ?? WINDOW_MS;
    this.ring = new SampleRing(options.capacity ?? CAPACITY);
    this.minSpacing = this.windowMs / this.ring.capacity;
    this.slotStart = -Infinity; // when the newest ring slot was opened
    this.now = options.now ?? (() => performance.now());
    this.frame = 0;
    this.pointsShown = -1;
    this.label = '';
    this.colors = null;
    this.draw = this.draw.bind(this);

    this.resizeObserver = new ResizeObserver(() => this.invalidate());
    try {
      // Also fires when only devicePixelRatio changes (zoom, moving to another screen).
      this.resizeObserver.observe(canvas, { box: 'device-pixel-content-box' });
    } catch {
      this.resizeObserver.observe(canvas);
    }
    this.schemeQuery = window.matchMedia('(prefers-color-scheme: dark)');
    this.onScheme = () => {
      this.colors = null;
      this.invalidate();
    };
    this.schemeQuery.addEventListener('change', this.onScheme);
    this.invalidate();
  }

  /** Adds one sample; `time` is on the chart's clock, `value` a percentage. */
  add(time, value) {
    if (!Number.isFinite(time) || !Number.isFinite(value)) return;
    const t = Math.max(time, this.ring.lastTime()); // keep times ordered even if the caller's are not
    if (t - this.slotStart < this.minSpacing) {
      // Closer than the chart can show: the newest slot takes the latest value, but keeps the
      // time it opened at as its anchor, so a fast stream still advances slot by slot.
      this.ring.replaceLast(t, value);
    } else {
      this.ring.push(t, value);
      this.slotStart = t;
    }
    this.invalidate();
  }

  /** Forgets the samples at or after `time` (they are about to be replaced by a history). */
  dropFrom(time) {
    this.ring.dropFrom(time);
    this.slotStart = this.ring.lastTime();
    this.invalidate();
  }

  /** Moves every sample by `deltaMs` (a history found to be older than first assumed). */
  shift(deltaMs) {
    if (!Number.isFinite(deltaMs) || deltaMs === 0) return;
    this.ring.shift(deltaMs);
    this.slotStart += deltaMs;
    this.invalidate();
  }

  /** Forgets every sample (the page switched to another desktop). */
  clear() {
    this.ring.clear();
    this.slotStart = -Infinity;
    this.invalidate();
  }

  /** Called about once a second: time moved, so the window slides, if anything is visible. */
  tick() {
    if (this.ring.length === 0) return;
    if (this.pointsShown === 0 && this.ring.lastTime() < this.now() - this.windowMs) return;
    this.invalidate();
  }

  /** Schedules one redraw on the next animation frame (several calls, one frame). */
  invalidate() {
    if (this.frame === 0) this.frame = requestAnimationFrame(this.draw);
  }

  destroy() {
    if (this.frame !== 0) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.resizeObserver.disconnect();
    this.schemeQuery.removeEventListener('change', this.onScheme);
  }

  readColors() {
    const style = getComputedStyle(this.canvas);
    const get = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    return {
      line: get('--chart-line', '#2563eb'),
      fillTop: get('--chart-fill-top', 'rgba(37, 99, 235, 0.35)'),
      fillBottom: get('--chart-fill-bottom', 'rgba(37, 99, 235, 0)'),
      grid: get('--chart-grid', 'rgba(127, 127, 127, 0.25)'),
      text: get('--chart-text', '#6b7280'),
      font: style.fontFamily || 'sans-serif',
    };
  }

  draw() {
    this.frame = 0;
    const canvas = this.canvas;
    const fitted = fitToDevice(canvas);
    if (fitted === null) return; // not laid out (hidden); the observer calls back
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
    const bottom = top + height;
    // Crisp 1-px lines: align to device pixels.
    const crisp = (v) => (Math.round(v * dpr) + 0.5) / dpr;

    this.drawGrid(ctx, colors, left, top, width, height, crisp);

    const now = this.now();
    const start = now - this.windowMs;
    const xOf = (t) => left + (width * (t - start)) / this.windowMs;
    const yOf = (v) => top + height * (1 - Math.min(100, Math.max(0, v)) / 100);

    const ring = this.ring;
    // First sample to draw: the newest one before the window joins the line to the left edge.
    let first = 0;
    while (first < ring.length && ring.timeAt(first) < start) first += 1;
    const shownFrom = first;
    if (first > 0 && start - ring.timeAt(first - 1) <= GAP_MS) first -= 1;

    let shown = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = shownFrom; i < ring.length; i += 1) {
      const v = ring.valueAt(i);
      shown += 1;
      if (v < min) min = v;
      if (v > max) max = v;
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top - 3, width, height + 6);
    ctx.clip();
    const gradient = ctx.createLinearGradient(0, top, 0, bottom);
    gradient.addColorStop(0, colors.fillTop);
    gradient.addColorStop(1, colors.fillBottom);
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';

    // Walk contiguous runs of samples (no gap longer than GAP_MS) and draw each as area + line.
    let runStart = first;
    for (let i = first; i < ring.length; i += 1) {
      const endsHere = i === ring.length - 1 || ring.timeAt(i + 1) - ring.timeAt(i) > GAP_MS;
      if (!endsHere) continue;
      this.drawRun(ctx, runStart, i, xOf, yOf, bottom, gradient, colors);
      runStart = i + 1;
    }
    if (shown > 0) {
      const lastIndex = ring.length - 1;
      const x = xOf(ring.timeAt(lastIndex));
      const y = yOf(ring.valueAt(lastIndex));
      ctx.fillStyle = colors.line;
      ctx.beginPath();
      ctx.arc(x, y, 3.5, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.restore();

    if (shown === 0) {
      ctx.fillStyle = colors.text;
      ctx.font = `13px ${colors.font}`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText('Waiting for samples…', left + width / 2, top + height / 2);
    }

    if (shown !== this.pointsShown) {
      this.pointsShown = shown;
      canvas.dataset.points = String(shown);
    }
    const label = shown === 0
      ? 'CPU use over the last 60 seconds: no samples in this period'
      : `CPU use over the last 60 seconds: ${shown} samples, lowest ${Math.round(min)}%, ` +
        `highest ${Math.round(max)}%, latest ${Math.round(ring.valueAt(ring.length - 1))}%`;
    if (label !== this.label) {
      this.label = label;
      canvas.setAttribute('aria-label', label);
    }
  }

  drawGrid(ctx, colors, left, top, width, height, crisp) {
    ctx.lineWidth = 1;
    ctx.strokeStyle = colors.grid;
    ctx.fillStyle = colors.text;
    ctx.font = `11px ${colors.font}`;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.beginPath();
    for (const pct of GRID_STEPS) {
      const y = crisp(top + height * (1 - pct / 100));
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      if (pct % 50 === 0) ctx.fillText(`${pct}%`, left - 6, y);
    }
    ctx.stroke();

    ctx.textBaseline = 'top';
    const labelY = top + height + 6;
    ctx.textAlign = 'left';
    ctx.fillText('60 s ago', left, labelY);
    ctx.textAlign = 'center';
    ctx.fillText('30 s', left + width / 2, labelY);
    ctx.textAlign = 'right';
    ctx.fillText('now', left + width, labelY);
  }

  drawRun(ctx, from, to, xOf, yOf, bottom, gradient, colors) {
    const ring = this.ring;
    if (from === to) {
      ctx.fillStyle = colors.line;
      ctx.beginPath();
      ctx.arc(xOf(ring.timeAt(from)), yOf(ring.valueAt(from)), 2, 0, Math.PI * 2);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(xOf(ring.timeAt(from)), bottom);
    for (let i = from; i <= to; i += 1) ctx.lineTo(xOf(ring.timeAt(i)), yOf(ring.valueAt(i)));
    ctx.lineTo(xOf(ring.timeAt(to)), bottom);
    ctx.closePath();
    ctx.fillStyle = gradient;
    ctx.fill();

    ctx.beginPath();
    ctx.moveTo(xOf(ring.timeAt(from)), yOf(ring.valueAt(from)));
    for (let i = from + 1; i <= to; i += 1) ctx.lineTo(xOf(ring.timeAt(i)), yOf(ring.valueAt(i)));
    ctx.strokeStyle = colors.line;
    ctx.lineWidth = 2;
    ctx.stroke();
    ctx.lineWidth = 1;
  }
}
