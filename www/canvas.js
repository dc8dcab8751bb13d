// canvas.js — sizing a chart's canvas to the device's pixels, the one copy the charts share.
//
// A canvas is drawn in device pixels but laid out in CSS pixels: its backing store is resized to
// CSS size × devicePixelRatio (only when that changed, since resizing clears it), so lines stay
// crisp on high-density screens.

/**
 * Fits `canvas`'s backing store to its laid-out size. Returns `{ cssWidth, cssHeight, dpr }`, or
 * null while it is not laid out (hidden; a ResizeObserver calls back when it is).
 */
export function fitToDevice(canvas) {
  const cssWidth = canvas.clientWidth;
  const cssHeight = canvas.clientHeight;
  if (cssWidth === 0 || cssHeight === 0) return null;
  const dpr = window.devicePixelRatio || 1;
  const pixelWidth = Math.round(cssWidth * dpr);
  const pixelHeight = Math.round(cssHeight * dpr);
  if (canvas.width !== pixelWidth || canvas.height !== pixelHeight) {
    canvas.width = pixelWidth;
    canvas.height = pixelHeight;
  }
  return { cssWidth, cssHeight, dpr };
}
