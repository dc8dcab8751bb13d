// dom.js — the one way the page writes text into elements that update every second.
//
// Setting textContent replaces the element's text node with a new one each time, which at a few
// updates a second for days is needless garbage for the collector; rewriting the existing text
// node's value keeps the element's node count fixed. Writes are skipped when nothing changed.

/** Shows `text` in `el`, reusing its text node. */
export function setText(el, text) {
  const node = el.firstChild;
  if (node !== null && node === el.lastChild && node.nodeType === Node.TEXT_NODE) {
    if (node.nodeValue !== text) node.nodeValue = text;
  } else if (el.textContent !== text) {
    el.textContent = text;
  }
}
