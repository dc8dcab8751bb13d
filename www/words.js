// words.js — the relay's error codes in plain words.
//
// Codes are the protocol's (protocol/src/error_code.rs); people should not have to know them. Each
// entry says what happened and, where there is one, what to do. The relay's own message is shown
// beside it as detail, and an unknown code (a newer relay) still gets a sensible sentence.

const ERROR_WORDS = {
  bad_message: 'The relay could not read a message from this page.',
  unknown_event: 'The relay did not understand a message from this page (it may be an older relay).',
  not_allowed: 'The relay does not allow a viewer to do that.',
  peer_offline: 'The desktop is offline, so the command was not delivered.',
  peer_busy: 'The desktop is busy right now; try again in a moment.',
  too_large: 'A message was too large for the relay.',
  auth_timeout: 'The relay waited too long for this page to sign in.',
  auth_required: 'The page has to sign in to the relay first.',
  unauthorized: 'The relay refused this id or token. Check them and press Connect.',
  replaced: 'A newer connection took over from this one.',
  too_many_viewers: 'Too many viewers are watching this desktop already; the page will try again.',
  rate_limited: 'Too many requests in a short time; slow down a little.',
  shutting_down: 'The relay is restarting; the page reconnects by itself.',
  timeout: 'The relay heard nothing from this page for too long and closed the connection.',
};

/** A sentence for an error code from the relay. */
export function errorWords(code) {
  if (Object.hasOwn(ERROR_WORDS, code)) return ERROR_WORDS[code];
  return `The relay reported a problem (${code}).`;
}

/** Why a desktop is offline, as the relay says it (`presence.reason`), in words. */
export const OFFLINE_WORDS = {
  sleep: 'desktop asleep',
  shutdown: 'desktop shut down',
  logout: 'desktop logged out',
  quit: 'agent stopped',
  update: 'agent updating',
  lost: 'connection lost',
};

/** A desktop added from the page whose agent has not connected yet (`presence.waiting`). */
export const WAITING_WORDS = 'waiting for first connection';
