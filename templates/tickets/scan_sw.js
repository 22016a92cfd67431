// Service worker of the door scan page (scope /scan/): keeps the page and its files on the phone,
// so the scanner opens and works with no network once it has been opened. Rendered by
// tickets.door_views.scan_worker with the files' URLs and a version that changes with them.
// Only the page and those files are answered here; every API request goes to the network as usual.
"use strict";
const CONFIG = {{ config }};
const CACHE = `door-${CONFIG.version}`;
const PAGE_TIMEOUT_MS = 3500; // a hung network must not keep the page from opening

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(CONFIG.assets);
      // The page needs the login: keep it if this phone may see it (the page is cached again on
      // every visit online).
      try {
        const page = await fetch(CONFIG.page, { credentials: "same-origin" });
        if (page.ok && !page.redirected) await cache.put(CONFIG.page, page);
      } catch {
        // Offline while installing: the next visit online caches the page.
      }
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("door-") && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

async function pageFromNetworkOrCache(request) {
  const cache = await caches.open(CACHE);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), PAGE_TIMEOUT_MS);
  try {
    const response = await fetch(request, { signal: controller.signal });
    if (response.ok && !response.redirected) {
      await cache.put(CONFIG.page, response.clone());
      return response;
    }
    // Logged out (a redirect to the login page) or refused: the network's answer is the truth.
    if (response.status < 500) return response;
    return (await cache.match(CONFIG.page)) || response;
  } catch {
    const cached = await cache.match(CONFIG.page);
    if (cached) return cached;
    throw new Error("offline and the scan page was never opened on this phone");
  } finally {
    clearTimeout(timer);
  }
}

async function fileFromCacheOrNetwork(request) {
  const cached = await caches.match(request, { ignoreSearch: true });
  return cached || fetch(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === CONFIG.page) {
    event.respondWith(pageFromNetworkOrCache(request));
  } else if (CONFIG.assets.includes(url.pathname)) {
    event.respondWith(fileFromCacheOrNetwork(request));
  }
});
