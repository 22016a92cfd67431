/* The ticket in the student's pocket. Loaded on every page; settings come from <body> (no inline script).
 *
 * Every page: saved ticket pages of any account but the one logged in here are deleted, and all
 * of them when nobody is logged in (after "Log out"), so a shared phone never shows one
 * student's saved ticket to the next person.
 * Ticket pages (<body data-pocket-save>): register their service worker (scope: the ticket
 * pages only), save this page and its files under this account, then say so on the page
 * ("saved on this phone"; offline: "you are seeing the saved copy"). */
(function () {
  "use strict";
  var PREFIX = "ticket-pages:";
  var body = document.body;
  var account = body.getAttribute("data-pocket-account") || "";
  var mine = account ? PREFIX + account : "";
  // No Cache Storage (a page over plain HTTP from another host): nothing was saved, nothing to save.
  if (!window.caches) { return; }

  var cleaned = caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (key) {
      return key.indexOf(PREFIX) === 0 && key !== mine;
    }).map(function (key) { return caches.delete(key); }));
  });

  if (!mine || !body.hasAttribute("data-pocket-save") || !("serviceWorker" in navigator)) { return; }

  var page = location.origin + location.pathname;  // the key the service worker uses too
  var savedNote = document.getElementById("pocket-saved");
  var offlineNote = document.getElementById("pocket-offline");
  var savedAt = document.getElementById("pocket-saved-at");

  function files() {
    var urls = [];
    document.querySelectorAll("link[rel=stylesheet][href], script[src]").forEach(function (node) {
      var url = new URL(node.getAttribute("href") || node.getAttribute("src"), location.href);
      if (url.origin === location.origin) { urls.push(url.href); }
    });
    return urls;
  }

  function timeOf(response) {
    var date = new Date(response.headers.get("Date") || Date.now());
    var time = date.toLocaleTimeString(document.documentElement.lang || "id", {
      hour: "2-digit", minute: "2-digit", timeZone: "Asia/Jakarta"
    });
    return time + " WIB";
  }

  function showState(saved) {
    if (!saved) { return; }
    savedAt.textContent = "(" + (savedAt.getAttribute("data-label") || "") + " " + timeOf(saved) + ")";
    var online = navigator.onLine !== false;
    savedNote.hidden = !online;
    offlineNote.hidden = online;
  }

  var saving = cleaned
    .then(function () {
      return navigator.serviceWorker.register(body.getAttribute("data-pocket-worker"), {
        scope: body.getAttribute("data-pocket-scope")
      });
    })
    .then(function () { return caches.open(mine); })
    .then(function (cache) {
      return cache.match(page).then(function (copy) {
        // Controlled by the worker, this visit's page was saved before it was shown.
        if (copy && (navigator.serviceWorker.controller || navigator.onLine === false)) { return copy; }
        // The first visit, before the worker existed: save the page and its files now.
        return cache.addAll([page].concat(files())).then(function () { return cache.match(page); });
      });
    });

  saving.then(function (saved) {
    showState(saved);
    window.addEventListener("online", function () { showState(saved); });
    window.addEventListener("offline", function () { showState(saved); });
  }).catch(function () { /* not saved (storage full, private mode): no mark, the page still works */ });
})();
