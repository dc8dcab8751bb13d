// gauges.js — the per-core bars and the memory bar.
//
// Both update once a second for as long as the tab is open, so they only ever write into elements
// that already exist: the core bars are built once per core count (rebuilt only when the desktop
// reports a different number of cores) and reused for every sample; the memory gauge is fixed
// markup. Bar lengths go through a CSS custom property set with the CSSOM, which the page's
// Content-Security-Policy allows (it forbids style attributes in markup, not CSSOM writes).

import { setText } from './dom.js';
import { bytes, percent } from './format.js';

/** More cores than this switch the bars to a compact column layout without numbers. */
const DENSE_ABOVE = 16;
const HOT_PERCENT = 85;
/** Narrowest a core's tile may get and the gap between tiles, in rem (match style.css). */
const TILE = { minRem: 8.5, gapRem: 1.25 };
const DENSE_TILE = { minRem: 1.4, gapRem: 0.35 };

export class CoreBars {
  /**
   * @param {HTMLElement} container the #cores element; its children are owned by this class
   * @param {HTMLElement} countLabel where "(8)" goes
   */
  constructor(container, countLabel) {
    this.container = container;
    this.countLabel = countLabel;
    this.rows = []; // fixed per core count: {root, fill, value, last}
    this.columns = 0;
    // Re-balance the columns when the width changes (rotating a phone, resizing the window).
    this.resizeObserver = new ResizeObserver(() => this.balance());
    this.resizeObserver.observe(container);
  }

  /** Picks a column count that fits and gives rows of equal length where possible. */
  balance() {
    const count = this.rows.length;
    if (count === 0) return;
    const width = this.container.clientWidth;
    if (width === 0) return; // hidden; the observer calls again once it is laid out
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    const tile = this.container.classList.contains('dense') ? DENSE_TILE : TILE;
    const gap = tile.gapRem * rem;
    const fit = Math.max(1, Math.floor((width + gap) / (tile.minRem * rem + gap)));
    const rows = Math.ceil(count / fit);
    const columns = Math.ceil(count / rows);
    if (columns === this.columns) return;
    this.columns = columns;
    this.container.style.setProperty('--cols', String(columns));
  }

  /** Shows one sample's per-core percentages. */
  update(cores) {
    if (cores.length !== this.rows.length) this.rebuild(cores.length);
    for (let i = 0; i < cores.length; i += 1) {
      const raw = Number(cores[i]);
      const v = Number.isFinite(raw) ? Math.min(100, Math.max(0, raw)) : 0;
      const row = this.rows[i];
      if (row.last === v) continue;
      row.last = v;
      const text = percent(v);
      row.fill.style.setProperty('--level', String(v / 100));
      setText(row.value, `${Math.round(v)}%`);
      row.root.setAttribute('aria-valuenow', text);
      row.root.classList.toggle('hot', v >= HOT_PERCENT);
      if (row.dense) row.root.title = `Core ${i + 1}: ${text}%`;
    }
  }

  rebuild(count) {
    const dense = count > DENSE_ABOVE;
    this.container.replaceChildren();
    this.container.classList.toggle('dense', dense);
    this.rows = [];
    for (let i = 0; i < count; i += 1) {
      const root = document.createElement('div');
      root.className = 'core';
      root.setAttribute('role', 'meter');
      root.setAttribute('aria-valuemin', '0');
      root.setAttribute('aria-valuemax', '100');
      root.setAttribute('aria-label', `Core ${i + 1}`);
      const name = document.createElement('span');
      name.className = 'core-name';
      name.textContent = dense ? String(i + 1) : `Core ${i + 1}`;
      const value = document.createElement('span');
      value.className = 'core-value';
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('div');
      fill.className = 'bar-fill';
      bar.append(fill);
      root.append(name, value, bar);
      this.container.append(root);
      this.rows.push({ root, fill, value, last: NaN, dense });
    }
    this.countLabel.textContent = count > 0 ? `(${count})` : '';
    this.columns = 0;
    this.balance();
  }
}

export class MemoryGauge {
  /** @param {{used: HTMLElement, total: HTMLElement, percent: HTMLElement, bar: HTMLElement}} parts */
  constructor(parts) {
    this.parts = parts;
    this.last = '';
  }

  update(used, total) {
    const key = `${used}/${total}`;
    if (key === this.last) return;
    this.last = key;
    const fraction = total > 0 ? Math.min(1, used / total) : 0;
    setText(this.parts.used, bytes(used));
    setText(this.parts.total, bytes(total));
    setText(this.parts.percent, total > 0 ? `(${Math.round(fraction * 100)}%)` : '');
    this.parts.bar.style.setProperty('--level', String(fraction));
    this.parts.bar.classList.toggle('hot', fraction * 100 >= HOT_PERCENT);
  }
}
