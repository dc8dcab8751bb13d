// gaps.js — the history chart's offline periods: when the desktop was away and why, from
// `/api/history`'s `offline` (docs/protocol.md, "Gaps"), drawn under the line and read out in
// words ("desktop asleep 22:10–06:45", "connection lost since 14:02").
//
// Drawn as the page marks presence elsewhere: gone on purpose (asleep, shut down, logged out,
// stopped, updating) is quiet — a grey, hatched band; lost (no word from the desktop) is the
// alarm — a red band with a red edge along the top. history.js owns the canvas and the pointer;
// this module only knows intervals.

import { OFFLINE_WORDS } from './words.js';

const DAY_MS = 86_400_000;

/**
 * The answer's offline intervals clipped to `[from, to)`, in time order:
 * `{from, to, went, back, reason}` — `from`/`to` the visible part, `went`/`back` the true ends
 * (`back` null while still away). Malformed entries are skipped; an unknown reason (a newer
 * relay) is shown as lost.
 */
export function parseGaps(answer, from, to) {
  const raw = Array.isArray(answer?.offline) ? answer.offline : [];
  const gaps = [];
  for (const g of raw) {
    if (g === null || typeof g !== 'object' || !Number.isFinite(g.from)) continue;
    const back = Number.isFinite(g.to) ? g.to : null;
    const reason = Object.hasOwn(OFFLINE_WORDS, g.reason) ? g.reason : 'lost';
    const start = Math.max(from, g.from);
    const end = Math.min(to, back ?? to);
    if (end > start) gaps.push({ from: start, to: end, went: g.from, back, reason });
  }
  gaps.sort((a, b) => a.from - b.from);
  return gaps;
}

/** The index of the gap covering time `t`, or -1. */
export function gapAt(gaps, t) {
  for (let i = 0; i < gaps.length; i += 1) {
    if (t >= gaps[i].from && t < gaps[i].to) return i;
  }
  return -1;
}

function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function dated(t) {
  const when = new Date(t);
  return `${when.toLocaleDateString([], { month: 'short', day: 'numeric' })}, ${clock(t)}`;
}

/**
 * A gap in words: "desktop asleep 22:10–06:45" (times alone for less than a day), with dates
 * for longer ones, "… since 22:10" while still away.
 */
export function gapWords(gap) {
  const words = OFFLINE_WORDS[gap.reason];
  const end = gap.back ?? Date.now();
  const short = end - gap.went < DAY_MS;
  const at = short ? clock : dated;
  if (gap.back === null) return `${words} since ${at(gap.went)}`;
  return `${words} ${at(gap.went)}–${at(gap.back)}`;
}

/** Gone on purpose, or lost: the two looks a gap can have. */
export function isLost(gap) {
  return gap.reason === 'lost';
}

/** A small repeating hatch for the quiet bands, in `color`. */
function hatch(ctx, color) {
  const tile = document.createElement('canvas');
  tile.width = 8;
  tile.height = 8;
  const t = tile.getContext('2d');
  t.strokeStyle = color;
  t.lineWidth = 1;
  t.beginPath();
  t.moveTo(0, 8);
  t.lineTo(8, 0);
  t.stroke();
  return ctx.createPattern(tile, 'repeat');
}

/** The colours of the bands, from the canvas's CSS custom properties. */
export function gapColors(style) {
  const get = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    away: get('--chart-gap-away', 'rgba(148, 163, 184, 0.16)'),
    awayHatch: get('--chart-gap-away-hatch', 'rgba(148, 163, 184, 0.45)'),
    lost: get('--chart-gap-lost', 'rgba(220, 38, 38, 0.12)'),
    lostEdge: get('--chart-gap-lost-edge', 'rgba(220, 38, 38, 0.8)'),
    pattern: null,
  };
}

/**
 * Draws the bands of `gaps` over the plot (`xOf` maps time to css x; `top`, `height` the plot),
 * the hovered one (`hover`, an index or -1) a little stronger.
 */
export function drawGaps(ctx, gaps, xOf, top, height, colors, hover) {
  if (gaps.length === 0) return;
  if (colors.pattern === null) colors.pattern = hatch(ctx, colors.awayHatch);
  gaps.forEach((gap, i) => {
    const x = xOf(gap.from);
    const w = Math.max(1, xOf(gap.to) - x);
    ctx.globalAlpha = i === hover ? 1 : 0.85;
    if (isLost(gap)) {
      ctx.fillStyle = colors.lost;
      ctx.fillRect(x, top, w, height);
      ctx.fillStyle = colors.lostEdge;
      ctx.fillRect(x, top, w, 2);
    } else {
      ctx.fillStyle = colors.away;
      ctx.fillRect(x, top, w, height);
      ctx.fillStyle = colors.pattern ?? colors.awayHatch;
      ctx.fillRect(x, top, w, height);
    }
  });
  ctx.globalAlpha = 1;
}
