// app.js starts the page: it checks the session, draws the view the
// address asks for, and keeps the navigation and status line up to date.

import * as api from './api.js';
import { h, replace, sentence } from './dom.js';
import { signInView } from './views/signin.js';
import { overviewView } from './views/overview.js';
import { servicesView } from './views/services.js';
import { serviceView, classView } from './views/data.js';
import { networkView } from './views/network.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const sessionBox = document.getElementById('session');
const statusBox = document.getElementById('status');
const statusText = document.getElementById('status-text');

// The routes, each a pattern of the part of the address after "#/".
const routes = [
  { name: 'overview', re: /^overview$/, view: overviewView },
  { name: 'services', re: /^services$/, view: servicesView },
  { name: 'services', re: /^service\/(\d+)$/, view: serviceView },
  { name: 'services', re: /^service\/(\d+)\/class\/([A-Za-z0-9_]+)$/, view: classView },
  { name: 'network', re: /^network(?:\/(\d+))?$/, view: networkView },
];

let signedIn = false;
let drawing = 0;

// ctx is what views get: a place to draw, and ways to tell the person
// things.
const ctx = {
  main,
  // fail shows what went wrong, as the pod put it. A session that ended
  // is left to the sign-in form, which says so.
  fail(what, err) {
    if (err && err.status === 401 && !signedIn) {
      return;
    }
    const detail = err && err.message ? err.message : String(err);
    showStatus(`${what}: ${sentence(detail)}`, 'error');
  },
  // done confirms that something worked.
  done(text) {
    showStatus(text, 'ok');
  },
  clear: hideStatus,
  go(hash) {
    if (window.location.hash === hash) {
      draw();
    } else {
      window.location.hash = hash;
    }
  },
};

function showStatus(text, kind) {
  statusText.textContent = text;
  statusBox.className = `status ${kind}`;
  statusBox.hidden = false;
}

function hideStatus() {
  statusBox.hidden = true;
  statusText.textContent = '';
}

function setSignedIn(who) {
  signedIn = Boolean(who);
  nav.hidden = !signedIn;
  sessionBox.hidden = !signedIn;
  document.getElementById('who').textContent = who ? who.username : '';
}

function currentRoute() {
  const path = window.location.hash.replace(/^#\/?/, '');
  for (const r of routes) {
    const m = r.re.exec(path);
    if (m) {
      return { route: r, args: m.slice(1) };
    }
  }
  return null;
}

// draw shows the view of the current address; a newer draw wins over one
// still waiting for the pod.
async function draw() {
  drawing += 1;
  const mine = drawing;
  if (!signedIn) {
    showSignIn();
    return;
  }
  const found = currentRoute();
  if (!found) {
    window.location.replace('#/overview');
    return;
  }

  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.route === found.route.name) {
      a.setAttribute('aria-current', 'page');
    } else {
      a.removeAttribute('aria-current');
    }
  }
  replace(main, h('p', { class: 'loading' }, 'Loading…'));
  const view = await found.route.view(ctx, ...found.args);
  if (mine !== drawing || !signedIn) {
    return;
  }
  replace(main, view);
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
    document.title = `${heading.textContent} · Byoda pod`;
  }
}

function showSignIn(message) {
  setSignedIn(null);
  replace(main, signInView(ctx, message, (who) => {
    setSignedIn(who);
    hideStatus();
    if (!currentRoute()) {
      window.location.hash = '#/overview';
    }
    draw();
  }));
  document.title = 'Sign in · Byoda pod';
  const first = main.querySelector('input');
  if (first) {
    first.focus();
  }
}

async function signOut() {
  try {
    await api.session.signOut();
  } catch (err) {
    ctx.fail('Signing out failed', err);
    return;
  }
  hideStatus();
  showSignIn();
  showStatus('You are signed out.', 'ok');
}

async function start() {
  document.getElementById('signout').addEventListener('click', signOut);
  document.getElementById('status-close').addEventListener('click', hideStatus);
  document.getElementById('skip').addEventListener('click', (e) => {
    e.preventDefault();
    main.focus();
  });
  window.addEventListener('hashchange', () => {
    hideStatus();
    draw();
  });
  api.onSignedOut((err) => {
    if (signedIn) {
      showSignIn(sentence(err.message));
    }
  });

  try {
    setSignedIn(await api.session.get());
  } catch (err) {
    if (err.status !== 401) {
      ctx.fail('Checking the session failed', err);
    }
    setSignedIn(null);
  }
  draw();
}

start();
