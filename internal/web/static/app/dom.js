// dom.js builds elements and formats values. Text always goes in as text,
// never as HTML, so nothing the pod returns can become markup.

// h returns a new element with attributes and children. Attributes whose
// value is false, null or undefined are left out; "on" attributes take
// functions as listeners; children may be strings, nodes, arrays or null.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    if (Array.isArray(child)) {
      append(el, child);
    } else if (child instanceof Node) {
      el.appendChild(child);
    } else {
      el.appendChild(document.createTextNode(String(child)));
    }
  }
}

// replace puts children in place of everything el holds.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

let nextID = 0;

// uid returns an id unique within the page, for labels and descriptions.
export function uid(prefix) {
  nextID += 1;
  return `${prefix}-${nextID}`;
}

// formatDate writes an ISO date-time in the reader's locale and time zone.
export function formatDate(iso) {
  if (!iso) {
    return '';
  }
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) {
    return String(iso);
  }
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

// formatBytes writes a size in bytes, kB, MB or GB.
export function formatBytes(n) {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return i === 0 ? `${v} ${units[0]}` : `${v.toFixed(1)} ${units[i]}`;
}

// plural writes "1 thing" or "n things".
export function plural(n, noun, many) {
  return `${n} ${n === 1 ? noun : (many || `${noun}s`)}`;
}

// humanize turns a field name such as given_name into "Given name".
export function humanize(name) {
  const words = String(name).replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// sentence makes an error detail read as a sentence.
export function sentence(text) {
  const s = String(text || '').trim();
  if (!s) {
    return '';
  }
  const first = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

// tableWrap puts a table in a region that scrolls sideways on narrow
// screens and can be scrolled with the keyboard.
export function tableWrap(label, table) {
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: 0 },
    table);
}
