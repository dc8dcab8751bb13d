// sparkhistory.js — the last hour of each card's sparkline, from the relay's store.
//
// The fleet socket's `history` holds only a desktop's last minute or so; the cards show the last
// hour. So when a card first comes on screen the grid asks for it here, and this asks
// `GET /api/history` for the hour (one-minute aggregates; the mean is drawn) — at most 4 requests
// at a time, the others queued in the order their cards appeared, so a grid of a thousand
// desktops never fires a thousand requests at once, and cards scrolled past before their turn
// are asked for when they come back. A relay without a store (404 `no_store`) stops the loader
// for good: the cards keep today's line from the socket.

import { history } from './api.js';

export const HOUR_MS = 3_600_000;
const CONCURRENCY = 4;
const STEP_MS = 60_000;

export class SparkHistory {
  /**
   * @param {(id: string, points: number[][], step: number|null) => void} onPoints called with
   *   an answer's `[ts, min, mean, max]` points; `isWanted(id)` says whether a queued id is still
   *   worth asking for (its card on screen).
   */
  constructor({ onPoints, isWanted }) {
    this.onPoints = onPoints;
    this.isWanted = isWanted;
    /** Ids asked for or answered: each is fetched once per grid start. */
    this.asked = new Set();
    this.queue = [];
    this.running = 0;
    this.off = false;
    this.epoch = 0;
  }

  /** Forgets what was fetched (the grid starts afresh). */
  reset() {
    this.asked.clear();
    this.queue = [];
    this.epoch += 1;
    this.running = 0;
  }

  /** A card of `id` is on screen: fetch its hour, unless it was already. */
  want(id) {
    if (this.off || this.asked.has(id)) return;
    this.asked.add(id);
    this.queue.push(id);
    this.pump();
  }

  pump() {
    while (!this.off && this.running < CONCURRENCY && this.queue.length > 0) {
      const id = this.queue.shift();
      if (!this.isWanted(id)) {
        this.asked.delete(id); // off screen by now: asked for again when it comes back
        continue;
      }
      this.running += 1;
      this.fetch(id, this.epoch);
    }
  }

  async fetch(id, epoch) {
    const to = Date.now();
    try {
      const answer = await history(id, to - HOUR_MS, to, STEP_MS);
      if (epoch !== this.epoch) return;
      const points = Array.isArray(answer?.points) ? answer.points : [];
      this.onPoints(id, points, Number.isFinite(answer?.step) ? answer.step : null);
    } catch (err) {
      if (epoch !== this.epoch) return;
      if (err.code === 'no_store') {
        this.off = true;
        this.queue = [];
      }
      // Anything else (a refusal, the relay away): the card keeps its live line.
    } finally {
      if (epoch === this.epoch) {
        this.running -= 1;
        this.pump();
      }
    }
  }
}
