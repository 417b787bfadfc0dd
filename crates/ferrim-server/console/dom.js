// Small DOM helpers. Text is always set as text (never parsed as HTML), so data from the
// server cannot inject markup.

const PROPS = new Set(['value', 'checked', 'selected', 'indeterminate']);

/** Creates an element: h('button', { type: 'button', onClick }, 'Label'). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (PROPS.has(k)) {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let idCounter = 0;
export function uid(prefix = 'f') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A labelled form field; returns { wrap, input }. */
export function field(label, inputAttrs = {}, hint) {
  const id = inputAttrs.id || uid('in');
  const hintId = hint ? `${id}-hint` : undefined;
  const tag = inputAttrs.tag || 'input';
  const attrs = { ...inputAttrs, id, 'aria-describedby': hintId };
  delete attrs.tag;
  const input = h(tag, attrs);
  const wrap = h('div', { class: 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('small', { id: hintId, class: 'hint' }, hint) : null);
  return { wrap, input };
}

/** A region that shows API errors in place (role=alert is announced by screen readers). */
export function errorBox() {
  return h('div', { class: 'error', role: 'alert', hidden: true });
}

export function showError(box, err) {
  clear(box);
  if (!err) {
    box.hidden = true;
    return;
  }
  const text = err.description || err.message || String(err);
  box.append(h('strong', {}, 'Error: '), text);
  if (err.code || err.status) {
    const bits = [err.status ? `HTTP ${err.status}` : null, err.code].filter(Boolean).join(' · ');
    box.append(' ', h('span', { class: 'muted' }, `(${bits})`));
  }
  box.hidden = false;
}

/** A polite live region for success notes. */
export function statusBox() {
  return h('div', { class: 'status', role: 'status', 'aria-live': 'polite' });
}

export function showStatus(box, text) {
  box.textContent = text || '';
}

/** Disables a button while `fn` runs; returns fn's result. */
export async function busy(button, fn) {
  const was = button.disabled;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = was;
    button.removeAttribute('aria-busy');
  }
}

/** Copies text to the clipboard; falls back to selecting a hidden textarea. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) { /* fall back */ }
  const ta = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
  ta.remove();
  return ok;
}

/** A "Copy" button for the text returned by getText(). */
export function copyButton(getText, label = 'Copy') {
  const btn = h('button', { type: 'button', class: 'secondary small' }, label);
  btn.addEventListener('click', async () => {
    const ok = await copyText(getText());
    btn.textContent = ok ? 'Copied' : 'Copy failed — select and copy by hand';
    setTimeout(() => { btn.textContent = label; }, 2000);
  });
  return btn;
}

/**
 * A modal dialog (native <dialog>: focus is trapped and Escape closes it).
 * build(body, close) fills the body; resolves with what close(value) was given.
 */
export function modal(title, build) {
  return new Promise((resolve) => {
    const titleId = uid('dlg');
    const body = h('div', { class: 'dialog-body' });
    const dlg = h('dialog', { 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title), body);
    let result;
    const close = (value) => {
      result = value;
      dlg.close();
    };
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result);
    });
    build(body, close);
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** Asks for confirmation; resolves true only on the confirm button. */
export function confirmDialog(title, message, confirmLabel = 'Confirm', danger = true) {
  return modal(title, (body, close) => {
    const ok = h('button', { type: 'button', class: danger ? 'danger' : '', onClick: () => close(true) }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'secondary', onClick: () => close(false) }, 'Cancel');
    body.append(h('p', {}, message), h('div', { class: 'actions' }, cancel, ok));
    setTimeout(() => cancel.focus(), 0);
  });
}

export function fmtTime(ms) {
  if (!ms) return '—';
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleString();
}

export function fmtDuration(secs) {
  const n = Number(secs);
  if (!Number.isFinite(n) || n < 0) return '';
  if (n === 0) return 'never expires';
  const units = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  for (const [name, size] of units) {
    if (n >= size && n % size === 0) {
      const v = n / size;
      return `${v} ${name}${v === 1 ? '' : 's'}`;
    }
  }
  return `${n} seconds`;
}
