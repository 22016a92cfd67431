/* The ticket pages' service worker, scope {{ scope }} (served by tickets.views.pocket_worker).
 *
 * A ticket page opened once opens again with no connection: the page (network first) and its
 * files are kept in Cache Storage under "ticket-pages:<account>", the account being the
 * {{ account_header }} header of the page. One account's pages at a time: saving a page
 * deletes the pages of any other account, a log-in wall on a ticket page deletes them all,
 * and static/js/pocket.js does the same from every page. Offline, only that one account's
 * copies are served, and only ticket pages: the give-back and print pages, forms and the
 * rotating QR's API always go to the network. */
"use strict";

var PREFIX = "ticket-pages:";
var SCOPE = "{{ scope|escapejs }}";
var ACCOUNT_HEADER = "{{ account_header|escapejs }}";
var STATIC = "{{ static_url|escapejs }}";
// The hall's saturated Wi-Fi: after this long a saved copy beats a blank page.
var NETWORK_WAIT_MS = 4000;
var PAGE = new RegExp("^" + SCOPE + "([0-9a-f-]{36}/)?$");

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

function ours(keys) {
  return keys.filter(function (key) { return key.indexOf(PREFIX) === 0; });
}

function forget(except) {
  return caches.keys().then(function (keys) {
    return Promise.all(ours(keys).filter(function (key) { return key !== except; }).map(function (key) {
      return caches.delete(key);
    }));
  });
}

// The saved copy of a URL, from the one account that has copies (none if in doubt).
function saved(url) {
  return caches.keys().then(function (keys) {
    var names = ours(keys);
    if (names.length !== 1) { return undefined; }
    return caches.open(names[0]).then(function (cache) { return cache.match(url); });
  });
}

function keyOf(request) {
  var url = new URL(request.url);
  return url.origin + url.pathname;
}

function wait(ms) {
  return new Promise(function (resolve) { setTimeout(resolve, ms); });
}

// Network first; a copy if the network fails, or is slower than NETWORK_WAIT_MS and a copy exists.
function networkFirst(request, keep) {
  var key = keyOf(request);
  var network = fetch(request).then(keep);
  var slow = wait(NETWORK_WAIT_MS).then(function () {
    return saved(key).then(function (copy) { return copy || network; });
  });
  return Promise.race([network, slow]).catch(function () {
    return saved(key).then(function (copy) { return copy || Response.error(); });
  });
}

function keepPage(request) {
  return function (response) {
    var account = response.headers.get(ACCOUNT_HEADER);
    if (response.ok && account) {
      var name = PREFIX + account;
      return forget(name)
        .then(function () { return caches.open(name); })
        .then(function (cache) { return cache.put(keyOf(request), response.clone()); })
        .then(function () { return response; }, function () { return response; });
    }
    if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
      // Sent to the log-in page: nobody (or somebody else) is logged in now.
      return forget("").then(function () { return response; });
    }
    return response;
  };
}

function keepFile(request) {
  return function (response) {
    if (!response.ok) { return response; }
    return caches.keys().then(function (keys) {
      var names = ours(keys);
      if (names.length !== 1) { return response; }
      return caches.open(names[0])
        .then(function (cache) { return cache.put(keyOf(request), response.clone()); })
        .then(function () { return response; }, function () { return response; });
    });
  };
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === "navigate" && PAGE.test(url.pathname)) {
    event.respondWith(networkFirst(request, keepPage(request)));
  } else if (request.mode !== "navigate" && url.pathname.indexOf(STATIC) === 0) {
    event.respondWith(networkFirst(request, keepFile(request)));
  }
});
