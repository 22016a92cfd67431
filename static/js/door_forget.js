/* Door lists leave a shared phone with the login that downloaded them. Loaded on every page.
 *
 * A door list holds the names and NIMs of an event's ticket holders (static/js/door_store.js).
 * On every page, the lists saved under any account but the one logged in here are deleted, and
 * all of them when nobody is logged in (after "Log out"), with the answered scans of their
 * events. Scans still waiting to be sent stay: they are admissions the server has not heard of
 * yet, and the next door login sends them. The database is opened only if the phone has one. */
(function () {
  "use strict";
  var NAME = "ticketwar-door";
  if (!window.indexedDB || !indexedDB.databases) { return; }
  var account = document.body.getAttribute("data-door-account") || "";

  function forget(db) {
    var tx = db.transaction(["tickets", "meta", "scans"], "readwrite");
    var meta = tx.objectStore("meta");
    meta.getAll().onsuccess = function (found) {
      found.target.result.forEach(function (row) {
        if (row.key.indexOf("list:") !== 0 || row.owner === account) { return; }
        var event = row.key.slice("list:".length);
        meta.delete(row.key);
        var tickets = tx.objectStore("tickets");
        tickets.index("event").getAllKeys(event).onsuccess = function (keys) {
          keys.target.result.forEach(function (key) { tickets.delete(key); });
        };
        var scans = tx.objectStore("scans");
        scans.index("event").getAll(event).onsuccess = function (rows) {
          rows.target.result.forEach(function (scan) {
            if (scan.state !== "waiting") { scans.delete(scan.nonce); }
          });
        };
      });
    };
    tx.oncomplete = tx.onabort = function () { db.close(); };
  }

  indexedDB.databases().then(function (databases) {
    if (!databases.some(function (db) { return db.name === NAME; })) { return; }
    var opening = indexedDB.open(NAME);
    opening.onsuccess = function () {
      var db = opening.result;
      if (db.objectStoreNames.contains("meta")) { forget(db); } else { db.close(); }
    };
  });
})();
