// signin.js — the sign-in form (`POST /api/login`), shown when the relay has sign-in on and the
// page has no session.
//
// Says why a sign-in failed in words a person acts on: a wrong name or password (the relay does
// not tell which, on purpose), or too many attempts — then the button stays disabled and counts
// down the wait the relay gave (Retry-After). Also says why the page came back here (signed out,
// or the session ended: removed from the users file, expired).

import { login } from './api.js';
import { setText } from './dom.js';

const $ = (id) => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`index.html lacks #${id}`);
  return el;
};

export class SignIn {
  /** @param {{onSignedIn: () => void}} handlers */
  constructor({ onSignedIn }) {
    this.onSignedIn = onSignedIn;
    this.form = $('signin-form');
    this.user = $('signin-user');
    this.password = $('signin-password');
    this.submit = $('signin-submit');
    this.error = $('signin-error');
    this.waitUntil = 0;
    this.timer = 0;
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.signIn();
    });
  }

  /** Shows the form, with `why` (and its code) when the page was signed out. */
  show(why = '', code = '') {
    this.say(why, code);
    this.password.value = '';
    (this.user.value ? this.password : this.user).focus();
  }

  async signIn() {
    const user = this.user.value.trim();
    const password = this.password.value;
    if (!user || !password) {
      this.say('Enter your user name and password.', 'missing');
      (user ? this.password : this.user).focus();
      return;
    }
    if (performance.now() < this.waitUntil) return;
    this.submit.disabled = true;
    this.say('', '');
    try {
      await login(user, password);
      this.password.value = '';
      this.submit.disabled = false;
      this.onSignedIn();
    } catch (err) {
      this.password.value = '';
      this.password.focus();
      if (err.status === 401) {
        this.say('Wrong user name or password.', 'bad_credentials');
        this.submit.disabled = false;
      } else if (err.status === 429) {
        this.limited(err.retryAfter ?? 5);
      } else {
        this.say(`Could not sign in: ${err.message}`, err.code);
        this.submit.disabled = false;
      }
    }
  }

  /** Too many attempts: the wait, counted down, then the button again. */
  limited(seconds) {
    this.waitUntil = performance.now() + seconds * 1000;
    const render = () => {
      const left = Math.ceil((this.waitUntil - performance.now()) / 1000);
      if (left <= 0) {
        window.clearInterval(this.timer);
        this.timer = 0;
        this.submit.disabled = false;
        this.say('You can try again now.', 'rate_limited_over');
        return;
      }
      this.say(`Too many sign-in attempts. Try again in ${left} s.`, 'rate_limited');
    };
    if (this.timer !== 0) window.clearInterval(this.timer);
    this.timer = window.setInterval(render, 1000);
    render();
  }

  say(text, code) {
    setText(this.error, text);
    this.error.dataset.code = code;
  }
}
