// network.js shows the network links of a membership and the invites other
// members sent, with forms to add and remove links and to accept or remove
// invites.

import * as api from '../api.js';
import { h, replace, formatDate, sentence, tableWrap, uid } from '../dom.js';
import { confirmDialog, nowISO, recordFilter } from '../records.js';

const linkClass = 'network_links';
const inviteClass = 'network_invites';
const listLimit = 100;
const relations = ['friend', 'family', 'colleague'];

// networkView finds the memberships whose contracts have network links and
// shows the one the address names, or the first.
export async function networkView(ctx, wanted) {
  let candidates;
  try {
    const list = await api.services();
    const members = list.services.filter((s) => s.member);
    const described = await Promise.all(members.map((s) => api.service(s.service_id)));
    candidates = described.filter((svc) =>
      svc.classes.some((c) => c.name === linkClass));
  } catch (err) {
    ctx.fail('Loading the network failed', err);
    return h('section', {}, h('h1', {}, 'Network'),
      h('p', { class: 'muted' }, 'The network could not be loaded.'));
  }

  if (candidates.length === 0) {
    return h('section', { 'aria-labelledby': 'network-title' },
      h('h1', { id: 'network-title' }, 'Network'),
      h('p', { class: 'muted' }, 'None of your memberships keeps network links. ',
        h('a', { href: '#/services' }, 'Join a service'), ' that does.'));
  }
  const svc = candidates.find((s) => String(s.service_id) === wanted) || candidates[0];
  return networkOf(ctx, svc, candidates);
}

function networkOf(ctx, svc, candidates) {
  const sid = svc.service_id;
  const links = svc.classes.find((c) => c.name === linkClass);
  const invites = svc.classes.find((c) => c.name === inviteClass);
  const linkBox = h('div', { 'aria-live': 'polite' });
  const inviteBox = h('div', { 'aria-live': 'polite' });

  async function loadLinks() {
    replace(linkBox, h('p', { class: 'loading' }, 'Loading links…'));
    try {
      const res = await api.data(sid, linkClass, 'query', { first: listLimit });
      replace(linkBox, linkTable(res));
    } catch (err) {
      ctx.fail('Reading the network links failed', err);
      replace(linkBox, h('p', { class: 'muted' }, 'The links could not be read.'));
    }
  }

  async function loadInvites() {
    if (!invites) {
      replace(inviteBox, h('p', { class: 'muted' }, `${svc.name} has no invites.`));
      return;
    }
    replace(inviteBox, h('p', { class: 'loading' }, 'Loading invites…'));
    try {
      const res = await api.data(sid, inviteClass, 'query', { first: listLimit });
      replace(inviteBox, inviteTable(res));
    } catch (err) {
      ctx.fail('Reading the invites failed', err);
      replace(inviteBox, h('p', { class: 'muted' }, 'The invites could not be read.'));
    }
  }

  function more(res, cls) {
    return res.page_info.has_next_page
      ? h('p', { class: 'small' }, `Showing the first ${listLimit}. `,
        h('a', { href: `#/service/${sid}/class/${cls}` }, 'See them all'), '.')
      : null;
  }

  function linkTable(res) {
    if (res.edges.length === 0) {
      return h('p', { class: 'empty', id: 'no-links' },
        'No network links yet. Add the member ID of someone you know below.');
    }
    return [tableWrap('Network links', h('table', { id: 'links', class: 'stack' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Member'),
        h('th', { scope: 'col' }, 'Relation'),
        h('th', { scope: 'col' }, 'Since'),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, res.edges.map(({ node }) => h('tr', {},
        h('td', { 'data-label': 'Member' }, h('code', { class: 'id' }, node.member_id)),
        h('td', { 'data-label': 'Relation' }, h('span', { class: 'badge' }, node.relation)),
        h('td', { 'data-label': 'Since' }, h('time', { datetime: node.created_timestamp },
          formatDate(node.created_timestamp))),
        h('td', { class: 'row-actions' }, h('button', { type: 'button',
          class: 'button small danger-outline',
          'aria-label': `Remove the ${node.relation} link with ${node.member_id}`,
          onclick: () => removeLink(node) }, 'Remove'))))))), more(res, linkClass)];
  }

  function inviteTable(res) {
    if (res.edges.length === 0) {
      return h('p', { class: 'empty', id: 'no-invites' },
        'No invites. When another member invites you, the invite shows here.');
    }
    return [tableWrap('Invites', h('table', { id: 'invites', class: 'stack' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'From'),
        h('th', { scope: 'col' }, 'Relation'),
        h('th', { scope: 'col' }, 'Message'),
        h('th', { scope: 'col' }, 'Received'),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, res.edges.map(({ node }) => h('tr', {},
        h('td', { 'data-label': 'From' }, h('code', { class: 'id' }, node.member_id)),
        h('td', { 'data-label': 'Relation' }, h('span', { class: 'badge' }, node.relation)),
        h('td', { 'data-label': 'Message' },
          node.text || h('span', { class: 'muted' }, '—')),
        h('td', { 'data-label': 'Received' }, h('time', { datetime: node.created_timestamp },
          formatDate(node.created_timestamp))),
        h('td', { class: 'row-actions' },
          h('button', { type: 'button', class: 'button small primary',
            'aria-label': `Accept the invite from ${node.member_id}`,
            onclick: (e) => acceptInvite(node, e.currentTarget) }, 'Accept'),
          h('button', { type: 'button', class: 'button small danger-outline',
            'aria-label': `Remove the invite from ${node.member_id}`,
            onclick: () => removeInvite(node) }, 'Remove'))))))), more(res, inviteClass)];
  }

  function removeLink(node) {
    confirmDialog({ title: 'Remove this link?',
      text: `Member ${node.member_id} will no longer count as your ${node.relation}.`,
      confirm: 'Remove',
      act: async () => {
        await api.data(sid, linkClass, 'delete', { filter: recordFilter(links, node) });
        ctx.done(`Removed the ${node.relation} link with ${node.member_id}.`);
        await loadLinks();
      } });
  }

  async function acceptInvite(node, button) {
    button.disabled = true;
    try {
      await api.data(sid, linkClass, 'append', { data: { member_id: node.member_id,
        relation: node.relation, created_timestamp: nowISO() } });
      await api.data(sid, inviteClass, 'delete', { filter: recordFilter(invites, node) });
    } catch (err) {
      ctx.fail('Accepting the invite failed', err);
      button.disabled = false;
      return;
    }
    ctx.done(`Accepted: ${node.member_id} is now linked as ${node.relation}.`);
    await Promise.all([loadLinks(), loadInvites()]);
  }

  function removeInvite(node) {
    confirmDialog({ title: 'Remove this invite?',
      text: `The invite from ${node.member_id} will be deleted without a link.`,
      confirm: 'Remove',
      act: async () => {
        await api.data(sid, inviteClass, 'delete', { filter: recordFilter(invites, node) });
        ctx.done(`Removed the invite from ${node.member_id}.`);
        await loadInvites();
      } });
  }

  loadLinks();
  loadInvites();
  return h('section', { 'aria-labelledby': 'network-title' },
    h('div', { class: 'page-head' },
      h('h1', { id: 'network-title' }, 'Network'),
      h('p', { class: 'muted' },
        `The members you are linked with in ${svc.name}. Links decide who may read `,
        'what the contract shares with your network.')),
    candidates.length > 1 ? picker(svc, candidates) : null,
    h('p', { class: 'small' }, 'Your member ID, to give to others: ',
      h('code', { id: 'own-member-id' }, svc.member_id)),
    h('section', { class: 'card', 'aria-labelledby': 'links-title' },
      h('h2', { id: 'links-title' }, 'Network links'),
      linkBox,
      addLinkForm(ctx, sid, loadLinks)),
    h('section', { class: 'card', 'aria-labelledby': 'invites-title' },
      h('h2', { id: 'invites-title' }, 'Invites'),
      inviteBox));
}

function picker(svc, candidates) {
  const id = uid('network-service');
  const sel = h('select', { id }, candidates.map((c) =>
    h('option', { value: c.service_id, selected: c.service_id === svc.service_id }, c.name)));
  sel.addEventListener('change', () => {
    window.location.hash = `#/network/${sel.value}`;
  });
  return h('div', { class: 'field inline-field' }, h('label', { for: id }, 'Service'), sel);
}

function addLinkForm(ctx, sid, reload) {
  const memberID = uid('link-member');
  const relationID = uid('link-relation');
  const listID = uid('relations');
  const member = h('input', { id: memberID, name: 'member_id', type: 'text', required: true,
    spellcheck: 'false', autocapitalize: 'none',
    pattern: '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}',
    placeholder: '00000000-0000-0000-0000-000000000000' });
  const relation = h('input', { id: relationID, name: 'relation', type: 'text', required: true,
    list: listID, value: 'friend', autocapitalize: 'none' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const button = h('button', { type: 'submit', class: 'button primary' }, 'Add link');

  const form = h('form', { class: 'add-link', id: 'add-link', 'aria-labelledby': 'add-link-title' },
    h('h3', { id: 'add-link-title' }, 'Add a link'),
    h('div', { class: 'filter-row' },
      h('div', { class: 'field grow' }, h('label', { for: memberID }, 'Member ID'), member),
      h('div', { class: 'field' }, h('label', { for: relationID }, 'Relation'), relation,
        h('datalist', { id: listID }, relations.map((r) => h('option', { value: r })))),
      button),
    error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!form.reportValidity()) {
      return;
    }
    button.disabled = true;
    const rel = relation.value.trim().toLowerCase();
    try {
      await api.data(sid, linkClass, 'append', { data: { member_id: member.value.trim(),
        relation: rel, created_timestamp: nowISO() } });
    } catch (err) {
      error.textContent = `Adding the link failed: ${sentence(err.message)}`;
      button.disabled = false;
      return;
    }
    button.disabled = false;
    ctx.done(`Linked with ${member.value.trim()} as ${rel}.`);
    member.value = '';
    await reload();
  });
  return form;
}
