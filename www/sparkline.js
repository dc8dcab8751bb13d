// sparkline.js — one card's CPU line of the last hour, drawn on a small canvas on a time axis.
//
// A pure drawing function: the grid decides when (only for cards on screen whose samples or
// time window moved, once per animation frame) and owns the canvases' sizes and the theme's
// colours, read once for all cards. x is time (`now - windowMs` at the left edge, `now` at the
// right), so a desktop reporting every 10 s and one reporting every second look alike in time,
// and a pause shows as a break in the line (samples further apart than `gapMs` are not joined:
// the grid widens it for a slow cadence and for the store's one-minute points).
// y is fixed at 0–100 %: cards compare at a glance.

/** How far back a card's line reaches. */
export const SPARK_WINDOW_MS = 60 * 60_000;
/** Samples further apart than this are not joined by a line, unless the caller says otherwise. */
const GAP_MS = 5_000;

/** The theme's colours for the sparklines, read from CSS custom properties of `el`. */
export function sparkColors(el) {
  const style = getComputedStyle(el);
  const get = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    line: get('--chart-line', '#2563eb'),
    fill: get('--spark-fill', 'rgba(37, 99, 235, 0.16)'),
    grid: get('--chart-grid', 'rgba(127, 127, 127, 0.25)'),
  };
}

/**
 * Draws `ring` (times in Unix ms, values in %) into `canvas`, whose device-pixel size the caller
 * has set to `width` × `height` CSS pixels × `dpr`. Returns the number of samples in the window.
 */
export function drawSparkline(canvas, width, height, dpr, ring, now, colors,
  windowMs = SPARK_WINDOW_MS, gapMs = GAP_MS) {
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  // The 50 % line, faint: enough to read a level without an axis.
  ctx.strokeStyle = colors.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  const mid = (Math.round((height / 2) * dpr) + 0.5) / dpr;
  ctx.moveTo(0, mid);
  ctx.lineTo(width, mid);
  ctx.stroke();

  const start = now - windowMs;
  const top = 2;
  const usable = height - 4;
  const xOf = (t) => (width * (t - start)) / windowMs;
  const yOf = (v) => top + usable * (1 - Math.min(100, Math.max(0, v)) / 100);
  let first = 0;
  while (first < ring.length && ring.timeAt(first) < start) first += 1;
  const shown = ring.length - first;
  // The newest sample before the window joins the line to the left edge.
  if (first > 0 && first < ring.length && ring.timeAt(first) - ring.timeAt(first - 1) <= gapMs) first -= 1;
  if (shown === 0) return 0;

  ctx.lineJoin = 'round';
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = colors.line;
  ctx.fillStyle = colors.fill;
  let runStart = first;
  for (let i = first; i < ring.length; i += 1) {
    const endsHere = i === ring.length - 1 || ring.timeAt(i + 1) - ring.timeAt(i) > gapMs;
    if (!endsHere) continue;
    drawRun(ctx, ring, runStart, i, xOf, yOf, height);
    runStart = i + 1;
  }
  return shown;
}

function drawRun(ctx, ring, from, to, xOf, yOf, bottom) {
  if (from === to) {
    ctx.beginPath();
    ctx.arc(xOf(ring.timeAt(from)), yOf(ring.valueAt(from)), 1.5, 0, Math.PI * 2);
    const fill = ctx.fillStyle;
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fill();
    ctx.fillStyle = fill;
    return;
  }
  ctx.beginPath();
  ctx.moveTo(xOf(ring.timeAt(from)), bottom);
  for (let i = from; i <= to; i += 1) ctx.lineTo(xOf(ring.timeAt(i)), yOf(ring.valueAt(i)));
  ctx.lineTo(xOf(ring.timeAt(to)), bottom);
  ctx.closePath();
  ctx.fill();
  ctx.beginPath();
  ctx.moveTo(xOf(ring.timeAt(from)), yOf(ring.valueAt(from)));
  for (let i = from + 1; i <= to; i += 1) ctx.lineTo(xOf(ring.timeAt(i)), yOf(ring.valueAt(i)));
  ctx.stroke();
}
