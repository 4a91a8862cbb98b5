// signin.js is the sign-in form.

import * as api from '../api.js';
import { h, sentence } from '../dom.js';

// signInView returns the form; signedIn is called with the session once
// the pod accepts the credentials. message, when set, says why the person
// has to sign in again.
export function signInView(ctx, message, signedIn) {
  const error = h('p', { class: 'form-error', id: 'signin-error', role: 'alert' });
  const username = h('input', { id: 'username', name: 'username', type: 'text', required: true,
    autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'password', name: 'password', type: 'password',
    required: true, autocomplete: 'current-password', 'aria-describedby': 'signin-error' });
  const button = h('button', { type: 'submit', class: 'button primary wide' }, 'Sign in');
  if (message) {
    error.textContent = message;
  }

  const form = h('form', { id: 'signin-form', class: 'stack', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'username' }, 'Username'),
      username),
    h('div', { class: 'field' },
      h('label', { for: 'password' }, 'Password'),
      password),
    error,
    button);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!username.value || !password.value) {
      error.textContent = 'Enter both the username and the password.';
      (username.value ? password : username).focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      const who = await api.session.signIn(username.value, password.value);
      password.value = '';
      password.removeAttribute('aria-invalid');
      signedIn(who);
    } catch (err) {
      error.textContent = `Signing in failed: ${sentence(err.message)}`;
      password.setAttribute('aria-invalid', 'true');
      password.value = '';
      password.focus();
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });

  return h('section', { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('div', { class: 'card signin-card' },
      h('img', { src: '/app/icon.svg', alt: '', width: 48, height: 48, class: 'signin-logo' }),
      h('h1', { id: 'signin-title' }, 'Sign in to your pod'),
      h('p', { class: 'muted' },
        'Use the account username and password of this pod ',
        '(ACCOUNT_USERNAME and ACCOUNT_SECRET).'),
      form));
}
