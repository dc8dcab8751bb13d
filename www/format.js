// format.js — turning numbers into words a person reads at a glance: percentages, byte counts,
// ages ("4 s ago") and clock times. Pure functions, no DOM, so they are easy to check in isolation.

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 23.456 → "23.5" (one decimal keeps small changes visible without jitter in width). */
export function percent(value) {
  if (!Number.isFinite(value)) return '–';
  return Math.min(100, Math.max(0, value)).toFixed(1);
}

/** 6_657_199_308 → "6.2 GiB" (binary units, as memory is sold and reported). */
export function bytes(count) {
  if (!Number.isFinite(count) || count < 0) return '–';
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** A duration in milliseconds as a short age: "just now", "4 s", "3 min", "2 h 5 min", "3 d". */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

/** "4 s ago"; under a second is "just now". */
export function ago(ms) {
  return ms < 1000 ? 'just now' : `${duration(ms)} ago`;
}

/** A Unix-ms instant as a local clock time, with the date when it is not today. */
export function clockTime(unixMs, now = Date.now()) {
  const when = new Date(unixMs);
  const today = new Date(now);
  const time = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (when.toDateString() === today.toDateString()) return time;
  const date = when.toLocaleDateString([], { month: 'short', day: 'numeric' });
  return `${date}, ${time}`;
}

/** "1 viewer", "3 viewers". */
export function plural(count, word) {
  return count === 1 ? word : `${word}s`;
}
