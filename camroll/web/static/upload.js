// Browser upload (/upload): pick or drop files, hash each with Web Crypto, ask the server which
// it lacks (POST /api/assets/check), send only those over tus (the endpoint `camroll sync` uses;
// the session cookie authenticates), then follow each new asset until it is stored or
// quarantined. tus-js-client resumes a cut connection from the server's offset.
(() => {
  "use strict";
  const root = document.getElementById("uploader");
  if (!root || !window.tus || !window.camrollAwaitAsset) return;
  const input = root.querySelector("input[type=file]");
  const zone = root.querySelector(".dropzone");
  const list = root.querySelector(".outcomes");
  const box = root.querySelector(".progress");
  const bar = root.querySelector("progress");
  const stats = root.querySelector(".stats");
  const after = root.querySelector(".after");
  const PARALLEL = 2;
  // Web Crypto hashes a whole buffer at once; above this a file is sent without asking first
  // (the server still recognises it on arrival) rather than risk a phone running out of memory.
  const HASH_LIMIT = 1024 * 1024 * 1024;

  const units = ["B", "KB", "MB", "GB"];
  function size(n) {
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
  }
  function duration(s) {
    if (!isFinite(s)) return "";
    if (s < 60) return `${Math.max(1, Math.round(s))} s`;
    const m = Math.floor(s / 60);
    return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
  }
  async function sha256(file) {
    const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  async function detail(response) {
    try { return (await response.json()).detail || response.statusText; } catch { return response.statusText; }
  }
  function tusMessage(err) {
    const res = err && err.originalResponse;
    if (res) {
      try { return JSON.parse(res.getBody()).detail; } catch { /* not JSON */ }
      return `the server answered ${res.getStatus()}`;
    }
    return "the connection failed; try again";
  }

  // One batch at a time; files picked while one runs join the next.
  let batch = null;
  let queued = [];

  function row(file) {
    const li = document.createElement("li");
    li.className = "file";
    li.dataset.state = "waiting";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    const what = document.createElement("span");
    what.className = "outcome";
    what.textContent = "Waiting";
    li.append(name, what);
    list.prepend(li);
    return { li, what, set(state, text) { li.dataset.state = state; what.textContent = text; } };
  }

  function render() {
    const b = batch;
    if (!b) return;
    const now = performance.now();
    const sent = b.items.reduce((n, it) => n + it.sent, 0);
    // Speed over the last few seconds, so a pause or a retry shows up quickly.
    b.samples.push([now, sent]);
    while (b.samples.length > 2 && now - b.samples[0][0] > 5000) b.samples.shift();
    const [t0, s0] = b.samples[0];
    const speed = now - t0 > 300 ? ((sent - s0) * 1000) / (now - t0) : 0;
    const done = b.items.filter((it) => it.final).length;
    const parts = [`${done} of ${b.items.length} files`];
    if (b.bytes) parts.push(`${size(sent)} of ${size(b.bytes)}`);
    if (b.hashing) parts.push(`checking ${b.hashing}`);
    else if (sent < b.bytes && speed > 0) {
      parts.push(`${size(speed)}/s`, `about ${duration((b.bytes - sent) / speed)} left`);
    }
    bar.max = Math.max(1, b.bytes || b.items.length);
    bar.value = b.bytes ? sent : done;
    stats.textContent = parts.join(" · ");
  }

  function finish(it, state, text) {
    it.final = state;
    it.view.set(state, text);
    render();
  }

  async function follow(it, assetId) {
    // A new asset is checked and given previews by a job; wait for its verdict.
    it.view.set("processing", "Uploaded, processing…");
    const [state, text] = await window.camrollAwaitAsset(assetId);
    finish(it, state, text);
  }

  function send(it) {
    return new Promise((resolve) => {
      const file = it.file;
      const upload = new tus.Upload(file, {
        endpoint: "/api/uploads",
        // Read per upload: the page sets it; tests shrink it to cut a small file mid-upload.
        chunkSize: Number(root.dataset.chunkBytes) || 8 * 1024 * 1024,
        retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000],
        removeFingerprintOnSuccess: true,
        metadata: {
          filename: file.name,
          filetype: file.type || "",
          checksum: it.sha || "",
          relativePath: file.webkitRelativePath || file.name,
        },
        onProgress(sent) { it.sent = sent; it.view.set("uploading", `Uploading ${Math.floor((100 * sent) / file.size)}%`); render(); },
        onError(err) {
          const res = err && err.originalResponse;
          // The same bytes arrived a moment ago (say, the same photo twice in one pick).
          if (res && res.getHeader("Camroll-Status") === "duplicate") {
            it.sent = file.size;
            finish(it, "had", "Already had");
          } else {
            it.sent = 0;
            finish(it, "failed", `Not uploaded: ${tusMessage(err)}`);
          }
          resolve();
        },
        onSuccess(payload) {
          it.sent = file.size;
          const res = payload && payload.lastResponse;
          const id = res && res.getHeader("Camroll-Asset-Id");
          if (res && res.getHeader("Camroll-Status") === "duplicate") finish(it, "had", "Already had");
          else if (id) follow(it, id).catch(() => finish(it, "failed", "Uploaded; its status could not be read"));
          else finish(it, "failed", "Uploaded, but the server did not say what became of it");
          resolve();
        },
      });
      // A file cut off in an earlier visit carries on from where it stopped.
      upload.findPreviousUploads().then((previous) => {
        if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      });
    });
  }

  async function run(files) {
    root.dataset.state = "busy";
    box.hidden = false;
    after.hidden = true;
    const items = files.map((file) => ({ file, sha: "", sent: 0, final: null, view: row(file) }));
    batch = { items, bytes: 0, samples: [], hashing: "" };
    render();
    const max = Number(root.dataset.maxBytes) || Infinity;
    const canHash = !!(window.crypto && crypto.subtle);
    for (const it of items) {
      if (it.file.size > max) { finish(it, "failed", `Too large: this server accepts files up to ${size(max)}`); continue; }
      if (!canHash || it.file.size > HASH_LIMIT) continue;
      batch.hashing = it.file.name;
      it.view.set("checking", "Checking");
      render();
      try { it.sha = await sha256(it.file); } catch { it.sha = ""; }
    }
    batch.hashing = "";
    let todo = items.filter((it) => !it.final);
    const hashed = todo.filter((it) => it.sha);
    // Asked in slices: the server takes at most 10,000 checksums per question.
    const missing = new Set();
    let refused = "";
    for (let i = 0; i < hashed.length && !refused; i += 1000) {
      const res = await fetch("/api/assets/check", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ checksums: hashed.slice(i, i + 1000).map((it) => it.sha) }),
      });
      if (res.ok) for (const sha of (await res.json()).missing) missing.add(sha);
      else refused = await detail(res);
    }
    if (refused) {
      for (const it of todo) finish(it, "failed", `Not uploaded: ${refused}`);
      todo = [];
    } else {
      for (const it of hashed) if (!missing.has(it.sha)) finish(it, "had", "Already had");
      todo = todo.filter((it) => !it.final);
    }
    batch.bytes = todo.reduce((n, it) => n + it.file.size, 0);
    render();
    const tick = setInterval(render, 1000);
    const workers = Array.from({ length: PARALLEL }, async () => {
      for (let it; (it = todo.shift()); ) await send(it);
    });
    await Promise.all(workers);
    // Outcomes of the last uploads arrive while their jobs finish.
    while (items.some((it) => !it.final)) await new Promise((r) => setTimeout(r, 300));
    clearInterval(tick);
    render();
    after.hidden = false;
    batch = null;
    root.dataset.state = queued.length ? "busy" : "idle";
    if (queued.length) { const next = queued; queued = []; run(next); }
  }

  function take(fileList) {
    const files = [...fileList].filter((f) => f.size >= 0);
    if (!files.length) return;
    if (batch) queued.push(...files);
    else run(files);
  }

  input.addEventListener("change", () => { take(input.files); input.value = ""; });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer) take(e.dataTransfer.files);
  });
})();
