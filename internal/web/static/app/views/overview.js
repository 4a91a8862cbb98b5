// overview.js is the account's overview: who it is, its certificates, its
// disk and its latest log lines.

import * as api from '../api.js';
import { h, formatBytes, formatDate, plural, tableWrap } from '../dom.js';

export async function overviewView(ctx) {
  let o;
  try {
    o = await api.overview();
  } catch (err) {
    ctx.fail('Loading the overview failed', err);
    return h('section', {}, h('h1', {}, 'Overview'),
      h('p', { class: 'muted' }, 'The overview could not be loaded.'));
  }

  return h('section', { 'aria-labelledby': 'overview-title' },
    h('div', { class: 'page-head' },
      h('h1', { id: 'overview-title' }, 'Overview'),
      h('p', { class: 'muted' }, `Your pod on the network ${o.network}.`)),
    h('div', { class: 'grid overview-grid' },
      accountCard(o),
      diskCard(o),
      membershipsCard(o)),
    certificatesCard(o),
    logCard(o));
}

function row(term, ...value) {
  return [h('dt', {}, term), h('dd', {}, ...value)];
}

function accountCard(o) {
  return h('section', { class: 'card', 'aria-labelledby': 'account-title' },
    h('h2', { id: 'account-title' }, 'Account'),
    h('dl', { class: 'facts', id: 'account-facts' },
      row('Account ID', h('code', { id: 'account-id' }, o.account_id)),
      row('Network', o.network),
      row('Name', h('code', {}, o.account_name)),
      o.custom_domain ? row('Custom domain', o.custom_domain) : null,
      row('Username', o.username),
      row('Running since', formatDate(o.started))));
}

function diskCard(o) {
  const d = o.disk;
  const size = `${d.complete ? '' : 'at least '}${formatBytes(d.bytes)}`;
  return h('section', { class: 'card', 'aria-labelledby': 'disk-title' },
    h('h2', { id: 'disk-title' }, 'Disk'),
    h('p', { class: 'big', id: 'disk-used' }, size),
    h('p', { class: 'muted' },
      `used by ${plural(d.files, 'file')} in `, h('code', {}, o.root_dir),
      d.complete ? '' : ' (the count stopped early)'));
}

function membershipsCard(o) {
  const list = o.memberships.length === 0
    ? h('p', { class: 'muted' }, 'Not a member of any service yet. ',
      h('a', { href: '#/services' }, 'Find services to join'), '.')
    : h('ul', { class: 'plain' }, o.memberships.map((m) =>
      h('li', {},
        h('a', { href: `#/service/${m.service_id}` }, m.name),
        h('span', { class: 'muted' }, ` · service ${m.service_id}, version ${m.version}`))));
  return h('section', { class: 'card', 'aria-labelledby': 'memberships-title' },
    h('h2', { id: 'memberships-title' }, 'Memberships'),
    list);
}

function certificatesCard(o) {
  const table = h('table', { id: 'certificates', class: 'stack' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Certificate'),
      h('th', { scope: 'col' }, 'Name'),
      h('th', { scope: 'col' }, 'Expires'),
      h('th', { scope: 'col' }, 'Days left'))),
    h('tbody', {}, o.certificates.map((c) => h('tr', {},
      h('td', { 'data-label': 'Certificate' }, c.use),
      h('td', { 'data-label': 'Name' }, h('code', { class: 'wrap' }, c.name)),
      h('td', { 'data-label': 'Expires' }, h('time', { datetime: c.not_after },
        formatDate(c.not_after))),
      h('td', { 'data-label': 'Days left' },
        h('span', { class: `badge ${badgeClass(c.days_left)}` },
        c.days_left < 0 ? 'expired' : String(c.days_left)))))));
  return h('section', { class: 'card', 'aria-labelledby': 'certs-title' },
    h('h2', { id: 'certs-title' }, 'Certificates'),
    h('p', { class: 'muted' },
      'The pod renews its certificates by itself well before they expire.'),
    tableWrap('Certificates', table));
}

function badgeClass(days) {
  if (days < 7) {
    return 'bad';
  }
  return days < 30 ? 'warn' : 'good';
}

function logCard(o) {
  let body;
  if (o.recent_log === null) {
    body = h('p', { class: 'muted', id: 'log-missing' },
      'This pod does not keep recent log lines in memory. ',
      'Its log files are in LOGDIR (pod.log).');
  } else if (o.recent_log.length === 0) {
    body = h('p', { class: 'muted', id: 'log-empty' }, 'Nothing has been logged yet.');
  } else {
    body = h('ol', { class: 'log', id: 'log-lines' }, o.recent_log.map((r) =>
      h('li', { class: `log-${r.level.toLowerCase()}` },
        h('time', { datetime: r.time }, formatDate(r.time)),
        h('span', { class: 'level' }, r.level),
        h('span', { class: 'msg' }, r.message),
        r.attrs ? h('span', { class: 'attrs' }, r.attrs) : null)));
  }
  return h('section', { class: 'card', 'aria-labelledby': 'log-title' },
    h('h2', { id: 'log-title' }, 'Recent log'),
    body);
}
