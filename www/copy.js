// copy.js — "Copy" buttons: the system clipboard where the browser allows it (a secure context
// and a user gesture), else the text is selected in its element so the person can press Ctrl+C
// — and the status next to the button says which happened.

/**
 * Copies `text`; `select` is the element showing it (an input, or any element whose contents can
 * be selected). Resolves to true when the text is on the clipboard.
 */
export async function copyText(text, select) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Refused (no permission, no focus): fall back to a selection.
  }
  selectContents(select);
  try {
    // Deprecated but still the only way without the async clipboard; harmless when refused.
    return document.execCommand('copy');
  } catch {
    return false;
  }
}

function selectContents(el) {
  if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
    el.focus();
    el.select();
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  el.focus();
}
