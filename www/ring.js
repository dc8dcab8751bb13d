// ring.js — a fixed-size ring buffer of (time, value) samples for the chart.
//
// The page runs for days in a wall-mounted tab, so the chart's memory must not grow: this buffer
// allocates its two typed arrays once and overwrites the oldest sample when full. Times are in
// milliseconds on any monotonic clock the caller picks; values are plain numbers.

export class SampleRing {
  /** @param {number} capacity how many samples the ring holds at most (fixed for its lifetime) */
  constructor(capacity) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.times = new Float64Array(capacity);
    this.values = new Float32Array(capacity);
    this.start = 0; // index of the oldest sample
    this.length = 0;
  }

  clear() {
    this.start = 0;
    this.length = 0;
  }

  /** Appends a sample, dropping the oldest one when the ring is full. */
  push(time, value) {
    let slot;
    if (this.length < this.capacity) {
      slot = (this.start + this.length) % this.capacity;
      this.length += 1;
    } else {
      slot = this.start;
      this.start = (this.start + 1) % this.capacity;
    }
    this.times[slot] = time;
    this.values[slot] = value;
  }

  /** Overwrites the newest sample (used to merge samples that arrive closer than the chart resolves). */
  replaceLast(time, value) {
    if (this.length === 0) {
      this.push(time, value);
      return;
    }
    const slot = (this.start + this.length - 1) % this.capacity;
    this.times[slot] = time;
    this.values[slot] = value;
  }

  /** Removes the newest samples whose time is at or after `time`. */
  dropFrom(time) {
    while (this.length > 0 && this.lastTime() >= time) this.length -= 1;
  }

  /** Adds `delta` to every sample's time. */
  shift(delta) {
    for (let i = 0; i < this.length; i += 1) this.times[(this.start + i) % this.capacity] += delta;
  }

  /** Time of the i-th sample, 0 = oldest. */
  timeAt(i) {
    return this.times[(this.start + i) % this.capacity];
  }

  /** Value of the i-th sample, 0 = oldest. */
  valueAt(i) {
    return this.values[(this.start + i) % this.capacity];
  }

  /** Time of the newest sample, or -Infinity when empty. */
  lastTime() {
    return this.length === 0 ? -Infinity : this.timeAt(this.length - 1);
  }
}
