// records.js holds what the data and network views share about records:
// reading form values by field type, the filter that finds a record again,
// and the dialogs that add, edit and delete records.

import { h, humanize, sentence, uid } from './dom.js';

// operatorWords say what each filter operator means.
export const operatorWords = {
  eq: 'is', ne: 'is not', glob: 'matches the pattern', regex: 'matches the expression',
  at: 'is at', nat: 'is not at', after: 'is after', before: 'is before',
  atafter: 'is at or after', atbefore: 'is at or before',
  gt: 'is more than', lt: 'is less than', egt: 'is at least', elt: 'is at most',
};

const longText = new Set(['text', 'contents', 'description', 'message']);

// nowISO returns the current time as the Data API writes it.
export function nowISO() {
  return new Date().toISOString();
}

// localInput writes an ISO date-time for a datetime-local input.
function localInput(iso) {
  const d = iso ? new Date(iso) : new Date();
  if (Number.isNaN(d.getTime())) {
    return '';
  }
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// recordFilter returns the filter that selects records equal to node in the
// required fields of cls, as the pod's own lookups do.
export function recordFilter(cls, node) {
  const filter = {};
  for (const name of cls.required) {
    const field = cls.fields.find((f) => f.name === name);
    const v = node[name];
    if (!field || field.type === 'array' || v === null || v === undefined) {
      continue;
    }
    filter[name] = field.type === 'date-time' ? { at: v } : { eq: v };
  }
  return filter;
}

// valueInput returns an input for one value of a field type.
export function valueInput(field, id, value) {
  const attrs = { id, name: field.name };
  switch (field.type) {
    case 'integer':
      return h('input', { ...attrs, type: 'number', step: 1, inputmode: 'numeric',
        value: value ?? '' });
    case 'number':
      return h('input', { ...attrs, type: 'number', step: 'any', inputmode: 'decimal',
        value: value ?? '' });
    case 'boolean': {
      const sel = h('select', attrs,
        h('option', { value: '' }, 'not set'),
        h('option', { value: 'true' }, 'yes'),
        h('option', { value: 'false' }, 'no'));
      sel.value = value === true ? 'true' : value === false ? 'false' : '';
      return sel;
    }
    case 'date-time':
      return h('input', { ...attrs, type: 'datetime-local', step: 1,
        value: value ? localInput(value) : '' });
    case 'uuid':
      return h('input', { ...attrs, type: 'text', spellcheck: 'false', autocapitalize: 'none',
        pattern: '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}',
        placeholder: '00000000-0000-0000-0000-000000000000', value: value ?? '' });
    default:
      break;
  }
  if (longText.has(field.name)) {
    const ta = h('textarea', { ...attrs, rows: 3 });
    ta.value = value ?? '';
    return ta;
  }
  const type = { email: 'email', uri: 'url' }[field.format] || 'text';
  return h('input', { ...attrs, type, value: value ?? '' });
}

// readValue converts what an input holds to the field's type; undefined
// means empty.
export function readValue(field, input) {
  const raw = input.value.trim();
  if (raw === '') {
    return undefined;
  }
  switch (field.type) {
    case 'integer':
    case 'number':
      return Number(raw);
    case 'boolean':
      return raw === 'true';
    case 'date-time':
      return new Date(raw).toISOString();
    case 'array': {
      const items = raw.split('\n').map((s) => s.trim()).filter((s) => s !== '');
      if (field.item_type === 'integer' || field.item_type === 'number') {
        return items.map(Number);
      }
      return items;
    }
    default:
      return raw;
  }
}

// editable reports whether the form can edit a field: arrays of records
// are left to the apps that make them.
function editable(field) {
  return field.type !== 'array' || ['string', 'integer', 'number', 'boolean']
    .includes(field.item_type);
}

// openDialog shows a modal dialog and removes it when it closes.
function openDialog(dialog) {
  document.body.appendChild(dialog);
  dialog.addEventListener('close', () => dialog.remove());
  dialog.showModal();
  const first = dialog.querySelector('input, select, textarea, button');
  if (first) {
    first.focus();
  }
}

// recordDialog opens a form for a record of cls: empty to add, filled from
// node to edit. save is called with the record and must return a promise;
// what it throws is shown in the dialog.
export function recordDialog({ title, cls, node, save, only }) {
  const titleID = uid('dialog-title');
  const error = h('p', { class: 'form-error', role: 'alert' });
  const inputs = [];
  const fields = cls.fields.filter((f) => editable(f) && (!only || only.includes(f.name)));
  const ordered = [
    ...cls.required.map((n) => fields.find((f) => f.name === n)).filter(Boolean),
    ...fields.filter((f) => !cls.required.includes(f.name)),
  ];

  const rows = ordered.map((field) => {
    const id = uid(`field-${field.name}`);
    const hintID = `${id}-hint`;
    let value = node ? node[field.name] : undefined;
    if (field.type === 'array' && Array.isArray(value)) {
      value = value.join('\n');
    }
    if (!node && field.required && field.type === 'date-time') {
      value = nowISO();
    }
    let input;
    if (field.type === 'array') {
      input = h('textarea', { id, name: field.name, rows: 3 });
      input.value = value ?? '';
    } else {
      input = valueInput(field, id, value);
    }
    if (field.required) {
      input.required = true;
    }
    const hints = [];
    if (field.description) {
      hints.push(field.description);
    }
    if (field.type === 'array') {
      hints.push('One value per line.');
    }
    if (hints.length > 0) {
      input.setAttribute('aria-describedby', hintID);
    }
    inputs.push({ field, input });

    const extra = field.type === 'uuid' && !node
      ? h('button', { type: 'button', class: 'button subtle small',
        'aria-label': `New ID for ${humanize(field.name)}`,
        onclick: () => { input.value = crypto.randomUUID(); input.focus(); } }, 'New ID')
      : null;
    return h('div', { class: 'field' },
      h('label', { for: id }, humanize(field.name),
        field.required ? h('span', { class: 'req' }, ' (required)') : null),
      extra ? h('div', { class: 'with-button' }, input, extra) : input,
      hints.length > 0 ? h('p', { class: 'hint', id: hintID }, hints.join(' ')) : null);
  });

  const saveButton = h('button', { type: 'submit', class: 'button primary' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'button subtle' }, 'Cancel');
  const form = h('form', { class: 'stack', method: 'dialog' }, rows, error,
    h('div', { class: 'actions' }, cancel, saveButton));
  const dialog = h('dialog', { 'aria-labelledby': titleID, class: 'dialog' },
    h('h2', { id: titleID }, title), form);

  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!form.reportValidity()) {
      return;
    }
    const record = node ? { ...node } : {};
    for (const { field, input } of inputs) {
      const v = readValue(field, input);
      if (v === undefined) {
        delete record[field.name];
      } else {
        record[field.name] = v;
      }
    }
    saveButton.disabled = true;
    saveButton.textContent = 'Saving…';
    try {
      await save(record);
      dialog.close();
    } catch (err) {
      error.textContent = `Saving failed: ${sentence(err.message)}`;
    } finally {
      saveButton.disabled = false;
      saveButton.textContent = 'Save';
    }
  });
  openDialog(dialog);
}

// confirmDialog asks before something that cannot be undone; act is called
// on confirmation and what it throws is shown in the dialog.
export function confirmDialog({ title, text, confirm, act }) {
  const titleID = uid('dialog-title');
  const error = h('p', { class: 'form-error', role: 'alert' });
  const yes = h('button', { type: 'button', class: 'button danger' }, confirm);
  const no = h('button', { type: 'button', class: 'button subtle' }, 'Cancel');
  const dialog = h('dialog', { 'aria-labelledby': titleID, class: 'dialog' },
    h('h2', { id: titleID }, title),
    h('p', {}, text),
    error,
    h('div', { class: 'actions' }, no, yes));

  no.addEventListener('click', () => dialog.close());
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    error.textContent = '';
    try {
      await act();
      dialog.close();
    } catch (err) {
      error.textContent = `${confirm} failed: ${sentence(err.message)}`;
      yes.disabled = false;
    }
  });
  openDialog(dialog);
  no.focus();
}
