/**
 * The report's only script: a tooltip with every series' value at the hovered time. The page is
 * complete without it (the legends carry last and peak values). Labels come from the recording,
 * so the tooltip is built with textContent, never innerHTML.
 */
export const REPORT_SCRIPT = `
(function () {
  'use strict';
  var UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  function bytes(v) {
    if (v === null || v === undefined) return 'n/a';
    var a = Math.abs(v);
    var text;
    if (a < 1024) text = a + ' B';
    else {
      var u = -1;
      while (a >= 1024 && u < UNITS.length - 1) { a /= 1024; u++; }
      text = a.toFixed(1) + ' ' + UNITS[u];
    }
    return (v < 0 ? '\\u2212' : '') + text;
  }
  function nearest(times, t) {
    var lo = 0, hi = times.length - 1;
    while (hi - lo > 1) {
      var mid = (lo + hi) >> 1;
      if (times[mid] < t) lo = mid; else hi = mid;
    }
    return Math.abs(times[lo] - t) <= Math.abs(times[hi] - t) ? lo : hi;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var tip = el('div', 'tooltip');
  tip.hidden = true;
  tip.setAttribute('role', 'status');
  document.body.appendChild(tip);
  var charts = document.querySelectorAll('svg[data-chart]');
  Array.prototype.forEach.call(charts, function (svg) {
    var data;
    try { data = JSON.parse(svg.getAttribute('data-tip') || 'null'); } catch (e) { return; }
    if (!data || !data.t || data.t.length === 0 || data.d1 <= data.d0) return;
    var guide = svg.querySelector('.guide');
    var label = (svg.closest('figure') || svg).getAttribute('data-label') || '';
    function hide() {
      tip.hidden = true;
      if (guide) guide.setAttribute('visibility', 'hidden');
    }
    svg.addEventListener('pointermove', function (ev) {
      var ctm = svg.getScreenCTM();
      if (!ctm) return;
      var p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse());
      if (p.x < data.x0 || p.x > data.x1) { hide(); return; }
      var t = (p.x - data.x0) / (data.x1 - data.x0) * (data.d1 - data.d0);
      var i = nearest(data.t, t);
      var x = data.x0 + data.t[i] / (data.d1 - data.d0) * (data.x1 - data.x0);
      if (guide) {
        guide.setAttribute('x1', String(x));
        guide.setAttribute('x2', String(x));
        guide.setAttribute('visibility', 'visible');
      }
      tip.textContent = '';
      tip.appendChild(el('div', 'when', new Date(data.d0 + data.t[i]).toISOString().slice(0, 19).replace('T', ' ') + ' UTC'));
      if (label) tip.appendChild(el('div', 'what', label));
      data.s.forEach(function (s) {
        if (s.h && s.v[i] === null) return;
        var row = el('div', 'row');
        var sw = el('i');
        sw.style.background = s.c;
        row.appendChild(sw);
        row.appendChild(el('span', '', s.l));
        row.appendChild(el('b', '', bytes(s.v[i])));
        tip.appendChild(row);
      });
      tip.hidden = false;
      var left = ev.pageX + 16;
      var maxLeft = window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 8;
      if (left > maxLeft) left = ev.pageX - tip.offsetWidth - 16;
      tip.style.left = Math.max(window.scrollX + 4, left) + 'px';
      tip.style.top = (ev.pageY + 16) + 'px';
    });
    svg.addEventListener('pointerleave', hide);
  });
})();
`;
