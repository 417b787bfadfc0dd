// App settings (GET/PUT /{org}/{app}/settings, a ferrim extension): registration mode,
// default token lifetime, multi-device caps and kick policy, offline message retention.
// The server applies them to the next request or login; no restart.

import {
  h, field, errorBox, showError, statusBox, showStatus, busy, fmtDuration, uid,
} from './dom.js';
import { ApiError } from './api.js';

function radios(legend, name, choices, current) {
  const inputs = [];
  const fs = h('fieldset', { class: 'radios' }, h('legend', {}, legend),
    choices.map(([value, label, hint]) => {
      const id = uid('r');
      const input = h('input', { type: 'radio', name, id, value, checked: value === current });
      inputs.push(input);
      return h('div', { class: 'radio' }, input,
        h('label', { for: id }, h('strong', {}, label), hint ? h('small', { class: 'hint' }, hint) : null));
    }));
  return { fs, value: () => (inputs.find((i) => i.checked) || {}).value };
}

export async function renderSettings(ctx) {
  const { api, main } = ctx;
  const loaded = await api.settings();
  const cur = (loaded && loaded.data && typeof loaded.data === 'object' && !Array.isArray(loaded.data)) ? loaded.data : (loaded || {});
  const err = errorBox();
  const status = statusBox();

  const reg = radios('Registration mode', 'registration_mode', [
    ['authorized', 'Authorized', 'Registering a user needs the app token (recommended for production).'],
    ['open', 'Open', 'Anyone may register with POST /users and no token — for demos and tests.'],
  ], cur.registration_mode);
  const ttl = field('Default token lifetime (seconds)', {
    type: 'number', name: 'token_ttl_secs', min: '0', step: '1', inputmode: 'numeric', value: String(cur.token_ttl_secs ?? ''),
  }, 'Used when a token request has no ttl; applies to tokens issued from now on. 0 = never expires.');
  const ttlHuman = h('small', { class: 'hint', 'aria-live': 'polite' });
  const showTtl = () => { ttlHuman.textContent = ttl.input.value === '' ? '' : `= ${fmtDuration(ttl.input.value)}`; };
  ttl.input.addEventListener('input', showTtl);
  showTtl();
  ttl.wrap.append(ttlHuman);
  const cap = field('Devices per platform', {
    type: 'number', name: 'device_cap_per_platform', min: '1', step: '1', inputmode: 'numeric', value: String(cur.device_cap_per_platform ?? ''),
  }, 'How many devices of one user may be online on each platform (web, mobile, desktop, linux, each custom platform).');
  const capsText = Object.entries(cur.device_caps || {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const caps = field('Exceptions per platform', {
    type: 'text', name: 'device_caps', value: capsText, autocomplete: 'off', spellcheck: 'false',
  }, 'Platforms with a different count, e.g. web=2, mobile=1, custom5=0 (0 = that platform may not log in). Platforms: web, mobile, desktop, linux, custom1 … custom100.');
  const kick = radios('When a platform is full', 'kick_policy', [
    ['kick_earliest', 'Kick the earliest device', 'The new login wins; the oldest device on that platform is logged out (code 206).'],
    ['refuse_newcomer', 'Refuse the newcomer', 'Devices already online stay; the new login fails (code 214).'],
  ], cur.kick_policy);

  const extra = [];
  if (cur.offline_keep_count !== undefined) {
    extra.push(field('Offline messages kept per user', { type: 'number', name: 'offline_keep_count', min: '0', step: '1', value: String(cur.offline_keep_count) }));
  }
  if (cur.offline_keep_days !== undefined) {
    extra.push(field('Offline messages kept for (days)', { type: 'number', name: 'offline_keep_days', min: '0', step: '1', value: String(cur.offline_keep_days) }));
  }

  const save = h('button', { type: 'submit' }, 'Save settings');
  const form = h('form', { class: 'card', 'aria-labelledby': 'set-h', novalidate: true },
    h('h2', { id: 'set-h' }, 'Users and devices'),
    err,
    reg.fs,
    ttl.wrap,
    h('fieldset', { class: 'group' }, h('legend', {}, 'Multi-device'), cap.wrap, caps.wrap, kick.fs),
    extra.length ? h('fieldset', { class: 'group' }, h('legend', {}, 'Offline messages'), extra.map((f) => f.wrap)) : null,
    h('div', { class: 'actions' }, save), status);

  const int = (f, min) => {
    const raw = f.input.value.trim();
    const n = Number(raw);
    if (raw === '' || !Number.isInteger(n) || n < min) {
      throw new ApiError(0, null, `${f.wrap.querySelector('label').textContent} must be a whole number ≥ ${min}.`);
    }
    return n;
  };

  // "web=2, custom5=0" → {web: 2, custom5: 0}; the server checks names and ranges.
  const capsOf = (f) => {
    const out = {};
    for (const part of f.input.value.split(/[,\s]+/).filter(Boolean)) {
      const m = /^([a-z0-9]+)=(\d+)$/.exec(part.trim());
      if (!m) {
        throw new ApiError(0, null, `Exceptions per platform: write name=count pairs such as web=2 (not "${part}").`);
      }
      out[m[1]] = Number(m[2]);
    }
    return out;
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(err, null);
    showStatus(status, '');
    let body;
    try {
      body = {
        registration_mode: reg.value(),
        token_ttl_secs: int(ttl, 0),
        device_cap_per_platform: int(cap, 1),
        device_caps: capsOf(caps),
        kick_policy: kick.value(),
      };
      for (const f of extra) body[f.input.name] = int(f, 0);
    } catch (e) {
      showError(err, e);
      return;
    }
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    busy(save, async () => {
      try {
        await api.saveSettings(body);
        showStatus(status, `Saved at ${new Date().toLocaleTimeString()}. New requests and logins use these settings.`);
      } catch (e) { showError(err, e); }
    });
  });

  main.append(h('h1', { tabindex: '-1' }, 'Settings'), form);
}
