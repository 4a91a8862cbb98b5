// services.js lists the services of the network, with a button to join
// the ones the pod is not a member of.

import * as api from '../api.js';
import { h } from '../dom.js';

export async function servicesView(ctx) {
  let list;
  try {
    list = await api.services();
  } catch (err) {
    ctx.fail('Loading the services failed', err);
    return h('section', {}, h('h1', {}, 'Services'),
      h('p', { class: 'muted' }, 'The services could not be loaded.'));
  }

  return h('section', { 'aria-labelledby': 'services-title' },
    h('div', { class: 'page-head' },
      h('h1', { id: 'services-title' }, 'Services'),
      h('p', { class: 'muted' },
        'The services of your network. Joining one makes your pod keep its data for you.')),
    list.directory_error
      ? h('p', { class: 'notice', role: 'note' }, list.directory_error) : null,
    list.services.length === 0
      ? h('p', { class: 'muted' }, 'The network has no services yet.')
      : h('ul', { class: 'cards', id: 'service-list' },
        list.services.map((s) => serviceCard(ctx, s))));
}

function serviceCard(ctx, s) {
  const titleID = `service-${s.service_id}-title`;
  const status = s.member
    ? h('p', { class: 'member-line' },
      h('span', { class: 'badge good' }, 'Member'),
      ` version ${s.accepted_version}`,
      s.version && s.version !== s.accepted_version ? ` (version ${s.version} is out)` : '')
    : h('p', { class: 'member-line' }, h('span', { class: 'badge' }, 'Not joined'));

  let action;
  if (s.member) {
    action = h('a', { class: 'button', href: `#/service/${s.service_id}` }, 'Open data');
  } else {
    action = h('button', { type: 'button', class: 'button primary',
      'aria-label': `Join ${s.name}`, 'data-join': s.service_id,
      disabled: !s.version }, 'Join');
    action.addEventListener('click', () => joinService(ctx, s, action));
  }

  return h('li', { class: 'card service', 'aria-labelledby': titleID,
    'data-service-id': s.service_id },
    h('div', { class: 'service-main' },
      h('h2', { id: titleID }, s.name),
      h('p', { class: 'muted small' }, `Service ${s.service_id}`,
        s.version ? ` · version ${s.version}` : ''),
      s.description ? h('p', {}, s.description) : null,
      status),
    h('div', { class: 'service-action' }, action));
}

async function joinService(ctx, s, button) {
  button.disabled = true;
  button.textContent = 'Joining…';
  ctx.clear();
  try {
    await api.join(s.service_id, s.version);
  } catch (err) {
    ctx.fail(`Joining ${s.name} failed`, err);
    button.disabled = false;
    button.textContent = 'Join';
    return;
  }
  ctx.go('#/services');
  ctx.done(`You joined ${s.name}.`);
}
