// A small self-drawn line chart (inline SVG; no library).

import { s } from './dom.js';

const W = 640;
const H = 220;
const PAD = { l: 40, r: 12, t: 12, b: 24 };

function niceMax(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * Draws `series` ([{ name, cls, values: number[] }]) over `times` (ms) into a fresh <svg>.
 * `windowMs` is the span of the x axis (newest sample at the right edge).
 */
export function lineChart({ series, times, windowMs, label }) {
  const now = times.length ? times[times.length - 1] : Date.now();
  const max = niceMax(Math.max(0, ...series.flatMap((x) => x.values)));
  const x = (t) => PAD.l + (W - PAD.l - PAD.r) * (1 - (now - t) / windowMs);
  const y = (v) => H - PAD.b - (H - PAD.t - PAD.b) * (v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label });
  for (let i = 0; i <= 4; i += 1) {
    const v = (max / 4) * i;
    svg.append(
      s('line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: PAD.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, Number.isInteger(v) ? String(v) : v.toFixed(1)));
  }
  const minutes = Math.round(windowMs / 60000);
  svg.append(
    s('text', { x: PAD.l, y: H - 6, class: 'axis' }, `−${minutes} min`),
    s('text', { x: W - PAD.r, y: H - 6, 'text-anchor': 'end', class: 'axis' }, 'now'));
  for (const ser of series) {
    const pts = [];
    ser.values.forEach((v, i) => {
      if (now - times[i] <= windowMs) pts.push(`${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`);
    });
    if (pts.length === 1) pts.push(pts[0].replace(/^[^,]+/, (W - PAD.r).toFixed(1)));
    if (pts.length) svg.append(s('polyline', { points: pts.join(' '), class: `line ${ser.cls}` }));
  }
  return svg;
}
