// What a door phone keeps in IndexedDB, so nothing is lost when the page closes or the phone
// restarts: the door list of each event (tickets, and its cursor for the next delta) and every scan
// the phone decided offline, with its time and the device, until the server has applied it.
// Each list is saved with its owner (the login that downloaded it); static/js/door_forget.js
// deletes the lists of any other login, and after a log-out, keeping the scans still to send.

const DB_NAME = "ticketwar-door";
const DB_VERSION = 1;

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onabort = transaction.onerror = () => reject(transaction.error);
  });
}

export async function openStore() {
  const request = indexedDB.open(DB_NAME, DB_VERSION);
  request.onupgradeneeded = () => {
    const db = request.result;
    // One row per ticket of an event's door list: key "<event>|<ticket id>".
    db.createObjectStore("tickets", { keyPath: "k" }).createIndex("event", "event");
    // Scans decided on this phone, waiting to sync (state "waiting") or answered ("synced").
    const scans = db.createObjectStore("scans", { keyPath: "nonce" });
    scans.createIndex("state", "state");
    scans.createIndex("event", "event");
    // The list's cursor and event details per event ("list:<slug>").
    db.createObjectStore("meta", { keyPath: "key" });
  };
  return new DoorStore(await promised(request));
}

class DoorStore {
  constructor(db) {
    this.db = db;
  }

  // The event's list as saved by ``owner`` (a list another login saved is not this one's).
  async loadList(event, owner) {
    const tx = this.db.transaction(["tickets", "meta"], "readonly");
    const meta = await promised(tx.objectStore("meta").get(`list:${event}`));
    if (meta && meta.owner !== owner) return null;
    const rows = await promised(tx.objectStore("tickets").index("event").getAll(event));
    return meta ? { meta, rows } : null;
  }

  // A full list replaces the event's rows; a delta puts the changed rows and drops the gone ones.
  async saveList(event, meta, rows, { full, gone = [] }) {
    const tx = this.db.transaction(["tickets", "meta"], "readwrite");
    const tickets = tx.objectStore("tickets");
    if (full) {
      const keys = await promised(tickets.index("event").getAllKeys(event));
      keys.forEach((key) => tickets.delete(key));
    }
    rows.forEach((row) => tickets.put({ ...row, k: `${event}|${row.id}`, event }));
    gone.forEach((id) => tickets.delete(`${event}|${id}`));
    tx.objectStore("meta").put({ ...meta, key: `list:${event}` });
    await done(tx);
  }

  async putTicket(event, row) {
    const tx = this.db.transaction("tickets", "readwrite");
    tx.objectStore("tickets").put({ ...row, k: `${event}|${row.id}`, event });
    await done(tx);
  }

  async addScan(scan) {
    const tx = this.db.transaction("scans", "readwrite");
    tx.objectStore("scans").put({ ...scan, state: "waiting" });
    await done(tx);
  }

  // The scans waiting to sync, oldest first (at most ``limit``).
  async waitingScans(limit = 500) {
    const tx = this.db.transaction("scans", "readonly");
    const scans = await promised(tx.objectStore("scans").index("state").getAll("waiting"));
    return scans.sort((a, b) => a.scanned_at - b.scanned_at).slice(0, limit);
  }

  async countWaiting() {
    const tx = this.db.transaction("scans", "readonly");
    return promised(tx.objectStore("scans").index("state").count("waiting"));
  }

  // The server's answers: each scan is marked synced with its result (and conflict, if any).
  // ``create``: also keep answers about scans this phone made online (a conflict found later).
  async markSynced(answers, { create = false } = {}) {
    const tx = this.db.transaction("scans", "readwrite");
    const store = tx.objectStore("scans");
    for (const answer of answers) {
      const scan = await promised(store.get(answer.nonce));
      if (scan || create) store.put({ ...(scan || {}), ...answer, state: "synced" });
    }
    await done(tx);
  }

  async conflicts(event) {
    const tx = this.db.transaction("scans", "readonly");
    const scans = await promised(tx.objectStore("scans").index("event").getAll(event));
    return scans.filter((scan) => scan.conflict).sort((a, b) => b.scanned_at - a.scanned_at);
  }
}
