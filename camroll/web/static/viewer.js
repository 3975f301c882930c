/* The full-screen viewer: arrow keys and swipes for next/previous, pinch, wheel or double-tap
   to zoom photos, videos with the browser's own controls (seeking uses HTTP Range), Live
   Photos play their motion, and an info panel rendered by the server (/timeline/info/ID). */
(function () {
  'use strict';
  var box = document.querySelector('.viewer');
  if (!box) return;
  var stage = box.querySelector('.v-stage');
  var title = box.querySelector('.v-title');
  var info = box.querySelector('.v-info');
  var infoBtn = box.querySelector('[data-v=info]');
  var liveBtn = box.querySelector('[data-v=live]');
  var tiles = [];
  var index = 0;
  var opener = null;
  var zoom = { s: 1, x: 0, y: 0 };
  var media = null;

  function item() { return JSON.parse(tiles[index].dataset.item); }
  function url(id, variant) { return '/api/assets/' + encodeURIComponent(id) + '/' + variant; }

  function applyZoom() {
    if (media && media.tagName === 'IMG') {
      media.style.transform = 'translate(' + zoom.x + 'px,' + zoom.y + 'px) scale(' + zoom.s + ')';
      box.classList.toggle('zoomed', zoom.s > 1.01);
    }
  }
  function resetZoom() { zoom = { s: 1, x: 0, y: 0 }; applyZoom(); }

  function show(i) {
    index = Math.max(0, Math.min(i, tiles.length - 1));
    var it = item();
    stage.textContent = '';
    resetZoom();
    if (it.kind === 'video') {
      media = document.createElement('video');
      media.controls = true;
      media.playsInline = true;
      media.preload = 'metadata';
      media.src = url(it.id, 'original');
      media.setAttribute('aria-label', it.name);
    } else {
      media = document.createElement('img');
      media.src = url(it.id, 'preview');
      media.alt = it.name + ', taken ' + it.local;
      media.draggable = false;
    }
    media.className = 'v-media';
    stage.appendChild(media);
    liveBtn.hidden = !it.live;
    title.textContent = it.local + ' · ' + it.name;
    box.querySelector('[data-v=prev]').disabled = index === 0;
    box.querySelector('[data-v=next]').disabled = index === tiles.length - 1;
    if (!info.hidden) loadInfo();
  }

  function playLive() {
    var it = item();
    if (!it.live) return;
    var v = document.createElement('video');
    v.className = 'v-live';
    v.muted = true;
    v.playsInline = true;
    v.src = url(it.live, 'original');
    v.setAttribute('aria-label', 'Live Photo motion');
    v.addEventListener('ended', function () { v.remove(); });
    stage.appendChild(v);
    v.play().catch(function () { v.remove(); });
  }

  function loadInfo() {
    var id = item().id;
    info.textContent = 'Loading…';
    fetch('/timeline/info/' + encodeURIComponent(id), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { if (item().id === id) info.innerHTML = html; })
      .catch(function () { info.textContent = 'Could not load the details.'; });
  }

  function open(tile) {
    tiles = Array.prototype.slice.call(document.querySelectorAll('#timeline .tile'));
    opener = tile;
    box.hidden = false;
    document.body.classList.add('viewing');
    show(tiles.indexOf(tile));
    box.querySelector('[data-v=close]').focus();
  }
  function close() {
    if (media && media.pause) media.pause();
    stage.textContent = '';
    media = null;
    box.hidden = true;
    document.body.classList.remove('viewing');
    var back = tiles[index] || opener;
    if (back) { back.scrollIntoView({ block: 'nearest' }); back.focus(); }
  }
  function step(d) {
    if (media && media.pause) media.pause();
    if (index + d >= 0 && index + d < tiles.length) show(index + d);
  }

  box.addEventListener('click', function (e) {
    var b = e.target.closest('[data-v]');
    if (!b) return;
    var act = b.dataset.v;
    if (act === 'close') close();
    else if (act === 'prev') step(-1);
    else if (act === 'next') step(1);
    else if (act === 'live') playLive();
    else if (act === 'info') {
      info.hidden = !info.hidden;
      infoBtn.setAttribute('aria-expanded', String(!info.hidden));
      box.classList.toggle('with-info', !info.hidden);
      if (!info.hidden) loadInfo();
    }
  });
  document.addEventListener('keydown', function (e) {
    if (box.hidden) return;
    if (e.key === 'Escape') { e.preventDefault(); close(); }
    else if (e.key === 'ArrowRight' && e.target.tagName !== 'VIDEO') { e.preventDefault(); step(1); }
    else if (e.key === 'ArrowLeft' && e.target.tagName !== 'VIDEO') { e.preventDefault(); step(-1); }
    else if (e.key === 'i') infoBtn.click();
    else if (e.key === 'Tab') {
      // Keep focus inside the dialog.
      var f = Array.prototype.slice.call(box.querySelectorAll('button:not([hidden]):not(:disabled), video, a[href]'))
        .filter(function (el) { return el.offsetParent !== null; });
      if (!f.length) return;
      var first = f[0], last = f[f.length - 1];
      if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
    }
  });

  // Pointers: one finger swipes (or pans a zoomed photo), two pinch; double tap zooms.
  var pts = new Map();
  var start = null;
  var lastTap = 0;
  function dist() {
    var p = Array.from(pts.values());
    return Math.hypot(p[0].x - p[1].x, p[0].y - p[1].y);
  }
  stage.addEventListener('pointerdown', function (e) {
    if (e.target.tagName === 'VIDEO') return;  // the video's own controls seek
    pts.set(e.pointerId, { x: e.clientX, y: e.clientY });
    stage.setPointerCapture(e.pointerId);
    start = { x: e.clientX, y: e.clientY, zx: zoom.x, zy: zoom.y, s: zoom.s, d: pts.size === 2 ? dist() : 0 };
  });
  stage.addEventListener('pointermove', function (e) {
    if (!pts.has(e.pointerId) || !start) return;
    pts.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pts.size === 2 && start.d) {
      zoom.s = Math.max(1, Math.min(6, start.s * dist() / start.d));
      applyZoom();
    } else if (pts.size === 1 && zoom.s > 1.01) {
      zoom.x = start.zx + e.clientX - start.x;
      zoom.y = start.zy + e.clientY - start.y;
      applyZoom();
    }
  });
  function up(e) {
    if (!pts.has(e.pointerId)) return;
    var wasPinch = pts.size === 2;
    pts.delete(e.pointerId);
    if (!start) return;
    if (wasPinch) { start = null; if (zoom.s <= 1.01) resetZoom(); return; }
    var dx = e.clientX - start.x, dy = e.clientY - start.y;
    if (zoom.s <= 1.01 && Math.abs(dx) > 50 && Math.abs(dx) > 1.5 * Math.abs(dy)) step(dx < 0 ? 1 : -1);
    else if (Math.abs(dx) < 8 && Math.abs(dy) < 8) {
      var now = Date.now();
      if (now - lastTap < 320) { zoom.s > 1.01 ? resetZoom() : (zoom.s = 2.5, applyZoom()); lastTap = 0; }
      else lastTap = now;
    }
    start = null;
  }
  stage.addEventListener('pointerup', up);
  stage.addEventListener('pointercancel', up);
  stage.addEventListener('wheel', function (e) {
    if (!media || media.tagName !== 'IMG') return;
    e.preventDefault();
    zoom.s = Math.max(1, Math.min(6, zoom.s * (e.deltaY < 0 ? 1.15 : 1 / 1.15)));
    if (zoom.s <= 1.01) resetZoom(); else applyZoom();
  }, { passive: false });

  window.camrollViewer = { open: open, close: close };
})();
