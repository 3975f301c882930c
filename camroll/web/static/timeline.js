/* Timeline: the justified grid (justified-layout), infinite scroll is htmx's (hx-trigger
   "revealed"), and selection mode for delete or "make a collage / recap / restyle". */
(function () {
  'use strict';
  var timeline = document.getElementById('timeline');
  if (!timeline) return;
  var selectBtn = document.querySelector('.tl-select');
  var bar = document.querySelector('.tl-actions');
  var countEl = bar.querySelector('.tl-count');
  var statusEl = bar.querySelector('.tl-status');

  function layoutGrid(grid) {
    var tiles = Array.prototype.slice.call(grid.querySelectorAll('.tile'));
    var width = grid.clientWidth;
    if (!tiles.length || !width || typeof window.require !== 'function') return;
    var phone = width < 600;
    var geo = window.require('justified-layout')(
      tiles.map(function (t) { return parseFloat(t.dataset.ar) || 1; }),
      { containerWidth: width, containerPadding: 0, boxSpacing: phone ? 2 : 4,
        targetRowHeight: phone ? 120 : 190 });
    grid.classList.add('justified');
    grid.style.height = geo.containerHeight + 'px';
    geo.boxes.forEach(function (b, i) {
      var s = tiles[i].style;
      s.left = b.left + 'px'; s.top = b.top + 'px';
      s.width = b.width + 'px'; s.height = b.height + 'px';
    });
  }
  function layoutAll() {
    timeline.querySelectorAll('.grid').forEach(layoutGrid);
  }
  var lastWidth = timeline.clientWidth;
  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if (timeline.clientWidth !== lastWidth) { lastWidth = timeline.clientWidth; layoutAll(); }
    }, 120);
  });
  document.body.addEventListener('htmx:afterSettle', layoutAll);
  layoutAll();

  // Selection: the Select button, or a long press on a tile (touch).
  var selecting = false;
  function selected() {
    return Array.prototype.slice.call(timeline.querySelectorAll('.tile.selected'));
  }
  function updateCount() {
    var n = selected().length;
    countEl.textContent = n + ' selected';
    bar.querySelectorAll('button[data-act]').forEach(function (b) {
      if (b.dataset.act !== 'cancel') b.disabled = n === 0;
    });
  }
  function setSelecting(on) {
    selecting = on;
    document.body.classList.toggle('selecting', on);
    if (selectBtn) selectBtn.setAttribute('aria-pressed', String(on));
    bar.hidden = !on;
    if (!on) {
      selected().forEach(function (t) { t.classList.remove('selected'); t.removeAttribute('aria-pressed'); });
    }
    updateCount();
  }
  function toggle(tile) {
    var on = !tile.classList.contains('selected');
    tile.classList.toggle('selected', on);
    tile.setAttribute('aria-pressed', String(on));
    updateCount();
  }
  if (selectBtn) selectBtn.addEventListener('click', function () { setSelecting(!selecting); });

  var pressTimer = null;
  var pressed = false;
  timeline.addEventListener('pointerdown', function (e) {
    var tile = e.target.closest('.tile');
    if (!tile || e.pointerType === 'mouse') return;
    pressed = false;
    pressTimer = setTimeout(function () {
      pressed = true;
      if (!selecting) setSelecting(true);
      toggle(tile);
    }, 550);
  });
  ['pointerup', 'pointercancel', 'pointermove'].forEach(function (name) {
    timeline.addEventListener(name, function (e) {
      if (name === 'pointermove' && Math.abs(e.movementX) + Math.abs(e.movementY) < 4) return;
      clearTimeout(pressTimer);
    });
  });
  timeline.addEventListener('contextmenu', function (e) {
    if (e.target.closest('.tile')) e.preventDefault();  // the long press selects instead
  });

  timeline.addEventListener('click', function (e) {
    var tile = e.target.closest('.tile');
    if (!tile) return;
    e.preventDefault();
    if (pressed) { pressed = false; return; }
    if (selecting) { toggle(tile); return; }
    if (window.camrollViewer) window.camrollViewer.open(tile);
  });
  timeline.addEventListener('keydown', function (e) {
    var tile = e.target.closest('.tile');
    if (tile && selecting && e.key === ' ') { e.preventDefault(); toggle(tile); }
  });

  function say(text, link) {
    statusEl.textContent = text + ' ';
    if (link) {
      var a = document.createElement('a');
      a.href = link[0]; a.textContent = link[1];
      statusEl.appendChild(a);
    }
  }
  function ids() { return selected().map(function (t) { return JSON.parse(t.dataset.item).id; }); }
  function detail(r) {
    return r.json().then(function (b) { return b.detail; }, function () { return r.statusText; })
      .then(function (d) { return typeof d === 'string' ? d : 'the server said ' + r.status; });
  }

  function removeTiles(tiles) {
    tiles.forEach(function (t) {
      var section = t.closest('section.day');
      t.remove();
      if (section && !section.querySelector('.tile')) section.remove();
    });
    layoutAll();
  }

  async function deleteSelected() {
    var tiles = selected();
    var done = [];
    for (var i = 0; i < tiles.length; i++) {
      var id = JSON.parse(tiles[i].dataset.item).id;
      var r = await fetch('/api/assets/' + encodeURIComponent(id), { method: 'DELETE', credentials: 'same-origin' });
      if (r.ok) done.push(tiles[i]);
      else { say('Could not delete: ' + (await detail(r))); break; }
    }
    removeTiles(done);
    setSelecting(false);
    bar.hidden = false;  // keep the message and the way to the trash in view
    say('Moved ' + done.length + ' to the trash.', ['/trash', 'Open the trash']);
  }

  async function create(kind) {
    var body = { kind: kind, asset_ids: ids(), title: kind === 'recap' ? 'My recap' : 'My ' + kind };
    if (kind === 'restyle') {
      var styles = await fetch('/api/ideas/styles', { credentials: 'same-origin' });
      if (!styles.ok) { say('Could not restyle: ' + (await detail(styles))); return; }
      body.style = (await styles.json())[0];
    }
    say('Making your ' + kind + '…');
    var r = await fetch('/api/ideas', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body)
    });
    if (r.ok) { window.location.href = '/ideas'; return; }
    say('Could not make it: ' + (await detail(r)));
  }

  bar.addEventListener('click', function (e) {
    var b = e.target.closest('button[data-act]');
    if (!b) return;
    var act = b.dataset.act;
    if (act === 'cancel') { setSelecting(false); statusEl.textContent = ''; }
    else if (act === 'delete') deleteSelected();
    else create(act);
  });
})();
