// camroll's service worker: makes the web app installable and keeps its shell (styles,
// scripts, icons, an offline page) for quick starts. Pages, photos, videos and every /api
// answer are never cached: they are private, and they stay on the server, encrypted.
"use strict";
const SHELL = "camroll-shell-v1";
const OFFLINE = "/static/offline.html";
const FILES = [
  OFFLINE,
  "/static/camroll.css",
  "/static/consent.css",
  "/static/upload.css",
  "/static/upload.js",
  "/static/asset_status.js",
  "/static/pwa.js",
  "/static/icons/icon-192.png",
  "/vendor/htmx.min.js",
  "/vendor/tus.min.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    // One missing file must not keep the whole app from installing.
    caches.open(SHELL)
      .then((cache) => Promise.all(FILES.map((f) => cache.add(f).catch(() => undefined))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/")) return;
  if (req.mode === "navigate") {
    // Pages always come from the server; without a connection, say so instead of a browser error.
    event.respondWith(fetch(req).catch(() => caches.match(OFFLINE)));
    return;
  }
  if (!FILES.includes(url.pathname)) return;
  // Shell files: answer from the cache at once, refresh it in the background.
  event.respondWith(
    caches.open(SHELL).then(async (cache) => {
      const cached = await cache.match(req, { ignoreSearch: true });
      const fresh = fetch(req).then((res) => {
        if (res.ok) cache.put(url.pathname, res.clone());
        return res;
      });
      if (cached) {
        event.waitUntil(fresh.catch(() => undefined));
        return cached;
      }
      return fresh;
    }),
  );
});
