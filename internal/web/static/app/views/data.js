// data.js shows the data of a membership: the classes of its contract with
// their access rules, and the records of one class as a table with paging,
// filters and forms to add, edit and delete.

import * as api from '../api.js';
import { h, replace, formatDate, humanize, plural, tableWrap, uid } from '../dom.js';
import {
  confirmDialog, operatorWords, readValue, recordDialog, recordFilter, valueInput,
} from '../records.js';

const pageSizes = [10, 20, 50, 100];

function failed(ctx, title, what, err) {
  ctx.fail(what, err);
  return h('section', {}, h('h1', {}, title),
    h('p', { class: 'muted' }, 'This page could not be loaded.'),
    h('p', {}, h('a', { href: '#/services' }, 'Back to the services')));
}

// kindLine says what kind of class cls is.
function kindLine(cls) {
  let kind = cls.kind === 'array' ? `list of ${cls.record} records` : 'one record';
  if (cls.cache_only) {
    kind += `, kept for ${cls.cache_only}`;
  }
  return kind;
}

// accessTable puts the access rules of a class in words.
export function accessTable(cls) {
  return h('table', { class: 'access' },
    h('caption', { class: 'sr-only' }, `Who may do what with ${cls.name}`),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Who'),
      h('th', { scope: 'col' }, 'May'))),
    h('tbody', {}, cls.access.map((g) => h('tr', {},
      h('th', { scope: 'row', title: g.who },
        h('span', { class: 'who' }, g.label),
        g.meaning ? h('span', { class: 'meaning' }, g.meaning) : null),
      h('td', { class: g.words === 'nothing' ? 'muted' : '' }, g.words)))));
}

function ownerLine(cls) {
  const can = [];
  if (cls.owner.read) {
    can.push('read');
  }
  if (cls.owner.add) {
    can.push('add');
  }
  if (cls.owner.edit) {
    can.push(cls.kind === 'object' ? 'set' : 'edit');
  }
  if (cls.owner.delete) {
    can.push('delete');
  }
  if (can.length === 0) {
    return 'You cannot use these records here.';
  }
  return `Here you can ${can.join(', ').replace(/, ([^,]*)$/, ' and $1')} them.`;
}

// serviceView lists the data classes of a membership.
export async function serviceView(ctx, sid) {
  let svc;
  try {
    svc = await api.service(sid);
  } catch (err) {
    return failed(ctx, 'Service', `Loading service ${sid} failed`, err);
  }

  return h('section', { 'aria-labelledby': 'service-title' },
    breadcrumb([['Services', '#/services'], [svc.name]]),
    h('div', { class: 'page-head' },
      h('h1', { id: 'service-title' }, svc.name),
      svc.description ? h('p', { class: 'muted' }, svc.description) : null),
    h('dl', { class: 'facts inline card' },
      h('dt', {}, 'Service'), h('dd', {}, String(svc.service_id)),
      h('dt', {}, 'Contract version'), h('dd', {}, String(svc.version)),
      h('dt', {}, 'Your member ID'), h('dd', {}, h('code', { id: 'member-id' }, svc.member_id))),
    h('h2', { class: 'section-title' }, `Data classes (${svc.classes.length})`),
    h('ul', { class: 'cards classes', id: 'class-list' }, svc.classes.map((cls) => {
      const titleID = `class-${cls.name}-title`;
      return h('li', { class: 'card', 'aria-labelledby': titleID, 'data-class': cls.name },
        h('div', { class: 'class-head' },
          h('h3', { id: titleID }, cls.name),
          h('span', { class: 'badge' }, kindLine(cls))),
        cls.description ? h('p', { class: 'muted' }, cls.description) : null,
        accessTable(cls),
        h('p', { class: 'small' }, ownerLine(cls)),
        cls.owner.read
          ? h('a', { class: 'button', href: `#/service/${sid}/class/${cls.name}`,
            'aria-label': `Records of ${cls.name}` }, 'Records')
          : null);
    })));
}

export function breadcrumb(items) {
  return h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' },
    h('ol', {}, items.map(([label, href], i) => h('li', {},
      href ? h('a', { href }, label)
        : h('span', { 'aria-current': i === items.length - 1 ? 'page' : false }, label)))));
}

// columns returns the fields a table shows, required ones first.
function columns(cls) {
  const req = cls.required.map((n) => cls.fields.find((f) => f.name === n)).filter(Boolean);
  return [...req, ...cls.fields.filter((f) => !cls.required.includes(f.name))];
}

// cell writes one value of a record for the table.
function cell(field, v) {
  if (v === null || v === undefined || (Array.isArray(v) && v.length === 0)) {
    return h('span', { class: 'muted', 'aria-label': 'empty' }, '—');
  }
  switch (field.type) {
    case 'date-time':
      return h('time', { datetime: v }, formatDate(v));
    case 'boolean':
      return v ? 'yes' : 'no';
    case 'uuid':
      return h('code', { class: 'id' }, v);
    case 'array':
      if (v.every((x) => typeof x !== 'object')) {
        return v.join(', ');
      }
      return plural(v.length, 'item');
    default:
      return String(v);
  }
}

// identify names a record for the labels of its buttons.
function identify(cls, node) {
  for (const name of cls.required) {
    const v = node[name];
    if (typeof v === 'string' && v && !/^\d{4}-\d\d-\d\dT/.test(v)) {
      return v;
    }
  }
  return '';
}

// classView is the records of one class.
export async function classView(ctx, sid, name) {
  let svc;
  try {
    svc = await api.service(sid);
  } catch (err) {
    return failed(ctx, name, `Loading service ${sid} failed`, err);
  }
  const cls = svc.classes.find((c) => c.name === name);
  if (!cls) {
    ctx.fail('Opening the class failed', new Error(`${svc.name} has no data class ${name}`));
    return h('section', {}, h('h1', {}, name), h('p', {},
      h('a', { href: `#/service/${sid}` }, `Back to ${svc.name}`)));
  }

  const state = { filter: {}, size: 20, cursors: [''], page: 0 };
  const results = h('div', { class: 'records', 'aria-live': 'polite' });
  const isArray = cls.kind === 'array';

  async function load() {
    const body = { first: state.size };
    if (Object.keys(state.filter).length > 0) {
      body.filter = state.filter;
    }
    if (state.cursors[state.page]) {
      body.after = state.cursors[state.page];
    }
    replace(results, h('p', { class: 'loading' }, 'Loading records…'));
    let res;
    try {
      res = await api.data(sid, name, 'query', body);
    } catch (err) {
      ctx.fail(`Reading ${name} failed`, err);
      replace(results, h('p', { class: 'muted' }, 'The records could not be read.'));
      return;
    }
    replace(results, table(res), isArray ? pager(res) : null);
  }

  function reload(message) {
    if (message) {
      ctx.done(message);
    }
    return load();
  }

  function table(res) {
    const cols = columns(cls);
    const canEdit = cls.owner.edit;
    const canDelete = cls.owner.delete;
    if (res.edges.length === 0) {
      const none = Object.keys(state.filter).length > 0
        ? 'No records match the filters.'
        : `There are no ${name} records yet.`;
      return h('p', { class: 'empty', id: 'no-records' }, none);
    }
    return tableWrap(`Records of ${name}`, h('table', { id: 'records', class: 'records stack' },
      h('caption', { class: 'sr-only' }, `Records of ${name}`),
      h('thead', {}, h('tr', {},
        cols.map((f) => h('th', { scope: 'col', title: f.description || false },
          humanize(f.name))),
        canEdit || canDelete ? h('th', { scope: 'col' }, h('span', { class: 'sr-only' },
          'Actions')) : null)),
      h('tbody', {}, res.edges.map((edge) => {
        const node = edge.node;
        const label = identify(cls, node);
        return h('tr', {},
          cols.map((f) => h('td', { 'data-field': f.name, 'data-label': humanize(f.name) },
            cell(f, node[f.name]))),
          canEdit || canDelete ? h('td', { class: 'row-actions' },
            canEdit ? h('button', { type: 'button', class: 'button small',
              'aria-label': `Edit ${label || 'record'}`,
              onclick: () => editRecord(node) }, 'Edit') : null,
            canDelete ? h('button', { type: 'button', class: 'button small danger-outline',
              'aria-label': `Delete ${label || 'record'}`,
              onclick: () => deleteRecord(node, label) }, 'Delete') : null) : null);
      }))));
  }

  function pager(res) {
    const sizeID = uid('page-size');
    const prev = h('button', { type: 'button', class: 'button small',
      disabled: state.page === 0 }, 'Previous');
    const next = h('button', { type: 'button', class: 'button small',
      disabled: !res.page_info.has_next_page }, 'Next');
    const size = h('select', { id: sizeID },
      pageSizes.map((n) => h('option', { value: n, selected: n === state.size }, String(n))));
    prev.addEventListener('click', () => {
      state.page -= 1;
      load();
    });
    next.addEventListener('click', () => {
      state.cursors[state.page + 1] = res.page_info.end_cursor;
      state.page += 1;
      load();
    });
    size.addEventListener('change', () => {
      state.size = Number(size.value);
      state.cursors = [''];
      state.page = 0;
      load();
    });
    return h('nav', { class: 'pager', 'aria-label': 'Pages' },
      prev,
      h('span', { class: 'page-no' },
        `Page ${state.page + 1} · ${plural(res.edges.length, 'record')}`),
      next,
      h('label', { for: sizeID, class: 'small' }, 'Per page'), size);
  }

  function addRecord() {
    const action = isArray ? 'append' : 'mutate';
    recordDialog({ title: isArray ? `Add to ${name}` : `Set ${name}`, cls,
      save: async (record) => {
        await api.data(sid, name, action, { data: record });
        await reload(isArray ? `Added a record to ${name}.` : `Saved ${name}.`);
      } });
  }

  function editRecord(node) {
    recordDialog({ title: `Edit ${name}`, cls, node, save: async (record) => {
      if (!isArray) {
        await api.data(sid, name, 'mutate', { data: record });
        await reload(`Saved ${name}.`);
        return;
      }
      const n = await api.data(sid, name, 'update',
        { filter: recordFilter(cls, node), data: record });
      await reload(`Changed ${plural(n, 'record')} of ${name}.`);
    } });
  }

  function deleteRecord(node, label) {
    confirmDialog({ title: `Delete from ${name}?`,
      text: `This deletes ${label ? `the record ${label}` : 'this record'}` +
        ' and every record equal to it in the required fields. It cannot be undone.',
      confirm: 'Delete',
      act: async () => {
        const n = await api.data(sid, name, 'delete', { filter: recordFilter(cls, node) });
        await reload(`Deleted ${plural(n, 'record')} from ${name}.`);
      } });
  }

  const toolbar = h('div', { class: 'toolbar' });
  if (isArray ? cls.owner.add : cls.owner.edit) {
    toolbar.appendChild(h('button', { type: 'button', class: 'button primary', id: 'add-record',
      onclick: addRecord }, isArray ? 'Add record' : `Set ${name}`));
  }
  toolbar.appendChild(h('button', { type: 'button', class: 'button subtle',
    onclick: () => load() }, 'Refresh'));

  const view = h('section', { 'aria-labelledby': 'class-title' },
    breadcrumb([['Services', '#/services'], [svc.name, `#/service/${sid}`], [name]]),
    h('div', { class: 'page-head' },
      h('h1', { id: 'class-title' }, name),
      h('p', { class: 'muted' }, `${humanize(kindLine(cls))} in ${svc.name}. ${ownerLine(cls)}`),
      cls.description ? h('p', {}, cls.description) : null),
    h('details', { class: 'card access-rules' },
      h('summary', {}, 'Who may do what'),
      accessTable(cls),
      h('p', { class: 'small muted' }, 'In the contract: ',
        h('code', {}, cls.access_summary))),
    toolbar,
    isArray ? filters(cls, (f) => {
      state.filter = f;
      state.cursors = [''];
      state.page = 0;
      load();
    }) : null,
    results);
  load();
  return view;
}

// filters is the filter form of an array class; apply is called with the
// filter whenever it changes.
function filters(cls, apply) {
  const usable = cls.fields.filter((f) => f.operators && f.operators.length > 0);
  const active = {};
  const chips = h('ul', { class: 'chips', 'aria-label': 'Active filters' });
  const fieldID = uid('filter-field');
  const opID = uid('filter-op');
  const valueID = uid('filter-value');
  const fieldSel = h('select', { id: fieldID },
    usable.map((f) => h('option', { value: f.name }, humanize(f.name))));
  const opSel = h('select', { id: opID });
  const valueBox = h('div', { class: 'field' });
  let input;

  function field() {
    return usable.find((f) => f.name === fieldSel.value);
  }

  function refreshValue() {
    input = valueInput(field(), valueID);
    input.required = true;
    replace(valueBox, h('label', { for: valueID }, 'Value'), input);
  }

  function refreshInputs() {
    const f = field();
    replace(opSel, f.operators.map((op) => h('option', { value: op }, operatorWords[op] || op)));
    refreshValue();
  }

  function drawChips() {
    replace(chips, Object.entries(active).flatMap(([name, conds]) =>
      Object.entries(conds).map(([op, v]) => h('li', { class: 'chip' },
        `${humanize(name)} ${operatorWords[op] || op} ${v}`,
        h('button', { type: 'button', class: 'chip-remove',
          'aria-label': `Remove filter ${humanize(name)} ${operatorWords[op] || op} ${v}`,
          onclick: () => {
            delete active[name][op];
            if (Object.keys(active[name]).length === 0) {
              delete active[name];
            }
            drawChips();
            apply(structuredClone(active));
          } }, '×')))));
  }

  if (usable.length === 0) {
    return null;
  }
  fieldSel.addEventListener('change', refreshInputs);
  refreshInputs();

  const form = h('form', { class: 'filters card', 'aria-label': 'Filter records' },
    h('div', { class: 'filter-row' },
      h('div', { class: 'field' }, h('label', { for: fieldID }, 'Field'), fieldSel),
      h('div', { class: 'field' }, h('label', { for: opID }, 'Condition'), opSel),
      valueBox,
      h('button', { type: 'submit', class: 'button' }, 'Add filter')),
    chips);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!form.reportValidity()) {
      return;
    }
    const f = field();
    const v = readValue(f, input);
    if (v === undefined) {
      return;
    }
    active[f.name] = { ...(active[f.name] || {}), [opSel.value]: v };
    refreshValue();
    drawChips();
    apply(structuredClone(active));
  });
  return form;
}
