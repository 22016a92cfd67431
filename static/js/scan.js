// Door scan page: camera (QR by the vendored qr-scanner, Code 128 by barcode.js), a keyboard-wedge
// scanner or typing, for the event chosen at this door. Online, each scan asks the server (with a
// timeout); with no usable answer (timeout, network error, 5xx, login gone) the phone decides from
// its door list instead and keeps the scan in IndexedDB until the server has applied it. Every
// answer is shown big for ~2 s and numbered, so two equal answers in a row are visibly two scans.
// Red means only what the server or the door list says about the ticket; network trouble is grey.

import { startBarcodes } from "./barcode.js";
import { DoorList, decideOffline, parseCode, rowsFromList } from "./door_decide.js";
import { openStore } from "./door_store.js";

const app = document.getElementById("scan-app");
const form = document.getElementById("scan-form");
const eventSelect = document.getElementById("scan-event");
const codeInput = document.getElementById("scan-code");
const resultBox = document.getElementById("scan-result");
const resultTitle = document.getElementById("scan-result-title");
const resultDetail = document.getElementById("scan-result-detail");
const resultNote = document.getElementById("scan-result-note");
const resultMeta = document.getElementById("scan-result-meta");
const doorNote = document.getElementById("scan-door");
const video = document.getElementById("scan-video");
const cameraToggle = document.getElementById("scan-camera-toggle");
const cameraNote = document.getElementById("scan-camera-note");
const identityConfirm = document.getElementById("scan-identity-confirm");
const connectionBadge = document.getElementById("scan-connection");
const waitingBadge = document.getElementById("scan-waiting");
const cardHint = document.getElementById("scan-card-hint");
const lookupInput = document.getElementById("scan-lookup");
const lookupResults = document.getElementById("scan-lookup-results");
const figuresLine = document.getElementById("scan-figures");
const phonesList = document.getElementById("scan-phones");
const listState = document.getElementById("scan-list-state");
const listDownload = document.getElementById("scan-list-download");
const deviceNameInput = document.getElementById("scan-device-name");
const conflictsPanel = document.getElementById("scan-conflicts");
const conflictList = document.getElementById("scan-conflict-list");
const text = JSON.parse(document.getElementById("scan-messages").textContent);
const config = JSON.parse(document.getElementById("scan-config").textContent);

const LOCALE = document.documentElement.lang === "en" ? "en-GB" : "id-ID";
const REQUEST_TIMEOUT_MS = 4000; // a scan waits at most this long for the server, then decides here
const SYNC_TIMEOUT_MS = 20000; // 500 waiting scans take the server a second or two
const POLL_MS = 3000; // door list deltas: other phones' admissions show up within a few seconds
const RESULT_HOLD_MS = 2000; // how long a result stays before the page is ready again
const DEDUPE_MS = 5000; // a phone held still re-reads the same code many times a second

let store = null; // IndexedDB (door_store.js); null where the browser has none
let list = null; // the door list of the chosen event (DoorList)
let listCursor = null;
let connection = navigator.onLine === false ? "offline" : "online";
let waiting = 0;
let syncing = false;
let pollTimer = null;
let queue = Promise.resolve(); // scans are answered one after the other, none dropped
let lastCameraCode = "";
let lastCameraAt = 0;
let resetTimer = null;
let scanner = null;
let stopBarcodes = null;
let scanCount = 0;
let identityPending = null; // {code, method}: waiting for staff to compare the student ID card
const localAdmissions = new Map(); // ticket id -> {at, by}: admitted here, not yet synced

const deviceId = localStorage.getItem("door-device-id") || randomId();
localStorage.setItem("door-device-id", deviceId);
let deviceName = localStorage.getItem("door-device-name") || config.user;
deviceNameInput.value = deviceName;

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // also where randomUUID is not (plain HTTP)
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fill(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => (values[key] ?? ""));
}

// Times in WIB, written as the page's language writes them ("18.52" in Indonesian).
function wib(value, options = {}) {
  if (!value) return "";
  const date = typeof value === "number" ? new Date(value) : new Date(value);
  const format = { timeZone: "Asia/Jakarta", hour: "2-digit", minute: "2-digit" };
  if (options.seconds) format.second = "2-digit";
  if (options.day) Object.assign(format, { day: "numeric", month: "short" });
  return date.toLocaleString(LOCALE, format);
}

function csrfToken() {
  const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
  return cookie ? decodeURIComponent(cookie.split("=")[1]) : form.querySelector("input[name=csrfmiddlewaretoken]").value;
}

function eventUrl(template, slug) {
  return template.replace("EVENT", encodeURIComponent(slug));
}

// One request with a deadline: ``{status, data}``, status 0 when no answer came (network, timeout).
async function request(url, { method = "GET", body = null, timeout = REQUEST_TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  try {
    const headers = { Accept: "application/json" };
    if (body !== null) Object.assign(headers, { "Content-Type": "application/json", "X-CSRFToken": csrfToken() });
    const response = await fetch(url, { method, body, headers, credentials: "same-origin", signal: controller.signal });
    let data = {};
    try {
      data = await response.json();
    } catch {
      data = {};
    }
    return { status: response.status, data };
  } catch {
    return { status: 0, data: {}, timedOut: controller.signal.aborted };
  } finally {
    clearTimeout(timer);
  }
}

// What an answer says about the connection: online, offline (no answer, 5xx) or auth (401/403).
function connectionOf(reply) {
  if (reply.status === 401 || reply.status === 403) return "auth";
  if (reply.status === 0 || reply.status >= 500) return "offline";
  return "online";
}

function whyNoAnswer(reply) {
  if (reply.status === 401 || reply.status === 403) return text.login_again_detail;
  if (reply.timedOut) return fill(text.timeout, { seconds: REQUEST_TIMEOUT_MS / 1000 });
  if (reply.status >= 500) return fill(text.server_error, { status: reply.status });
  return text.no_connection;
}

function setConnection(state) {
  const changed = state !== connection;
  connection = state;
  app.dataset.connection = state;
  connectionBadge.textContent = { online: text.online, offline: text.offline, auth: text.auth }[state];
  if (changed && state === "online") schedulePoll(0); // back online: sync at once
}

async function refreshWaiting() {
  waiting = store ? await store.countWaiting() : 0;
  waitingBadge.dataset.waiting = String(waiting);
  waitingBadge.textContent = waiting ? fill(text.waiting, { n: waiting }) : text.waiting_none;
}

// --- the result box -----------------------------------------------------------------------------

function show(state, title, detail = "", note = "") {
  resultBox.className = `scan-result scan-${state}`;
  resultBox.dataset.result = state;
  resultTitle.textContent = title;
  resultDetail.textContent = detail;
  resultNote.textContent = note;
  if (state !== "checking") {
    // An answer: number it and replay the flash, even when it equals the previous one.
    scanCount += 1;
    resultBox.dataset.scan = String(scanCount);
    resultMeta.textContent = fill(text.scan_meta, { n: scanCount, time: wib(Date.now(), { seconds: true }) });
    void resultBox.offsetWidth; // restart the CSS animation
    resultBox.classList.add("scan-flash");
  }
  clearTimeout(resetTimer);
  identityConfirm.hidden = state !== "identity";
  if (state !== "identity") identityPending = null;
  // An identity check waits for the staff's decision; every other answer clears itself.
  if (state !== "idle" && state !== "checking" && state !== "identity") {
    resetTimer = setTimeout(() => {
      resultBox.className = "scan-result scan-idle";
      resultBox.dataset.result = "idle";
      resultTitle.textContent = text.ready;
      resultDetail.textContent = text.ready_detail;
      resultNote.textContent = "";
    }, RESULT_HOLD_MS);
  }
}

function holderOf(name, nim) {
  return `${name}${nim ? " · " + nim : ""}`;
}

function reasonText(reason) {
  return text[`reason_${reason}`] || text.invalid_detail;
}

function alreadyTitle(time, by) {
  return `${text.already_admitted} ${fill(text.already_detail, { time: wib(time), staff: by || "?" })}`;
}

// The server's answer to a scan.
function renderServer(data) {
  const ticket = data.ticket;
  const holder = ticket ? holderOf(ticket.holder_name, ticket.nim) : "";
  switch (data.result) {
    case "admitted":
      show("admitted", text.admitted, holder);
      break;
    case "already_admitted":
      show("already", alreadyTitle(data.admitted_at, ticket.admitted_device || ticket.admitted_by), holder);
      break;
    case "needs_identity_check":
      show("identity", text.identity, fill(text.identity_detail, { holder }));
      break;
    case "wrong_event":
      show("wrong", text.wrong_event, `${fill(text.wrong_detail, { event: ticket.event_title || ticket.event })} — ${holder}`);
      break;
    default:
      show("invalid", text.invalid, reasonText(data.reason));
  }
}

// --- deciding a scan ---------------------------------------------------------------------------

function methodOf(code) {
  const kind = parseCode(code, config).kind;
  return kind === "qr" || kind === "rotating" ? "qr" : kind === "card" ? "card" : "code";
}

function submitScan(code, options = {}) {
  const next = queue.then(() => scanOnce(code, options));
  queue = next.catch(() => undefined);
  return next;
}

// Answer one scan; false when it could not be answered at all (the typed code is then kept).
async function scanOnce(rawCode, { identityChecked = false, method = null } = {}) {
  const code = String(rawCode || "").trim();
  if (!code) {
    show("notice", text.error, text.empty);
    return false;
  }
  if (!eventSelect.value) {
    show("notice", text.error, text.choose_event);
    return false;
  }
  const scan = { code, identityChecked, method: method || methodOf(code), nonce: randomId(), scannedAt: Date.now() };
  if (connection !== "online" && list) return decideHere(scan, "");
  show("checking", text.checking);
  const reply = await request(config.checkin, {
    method: "POST",
    body: JSON.stringify({
      code, event: eventSelect.value, identity_checked: identityChecked, nonce: scan.nonce,
      device_id: deviceId, device_name: deviceName, method: scan.method,
    }),
  });
  if (reply.status === 200) {
    setConnection("online");
    renderServer(reply.data);
    if (reply.data.result === "needs_identity_check") identityPending = { code, method: scan.method };
    rememberAdmission(reply.data);
    return true;
  }
  if (reply.status === 409 && reply.data.code === "outside_door_window") {
    setConnection("online");
    show("wrong", text.door_closed, reply.data.error || "");
    showDoor();
    return true;
  }
  if (reply.status === 429) {
    setConnection("online");
    show("notice", text.error, fill(text.rate_limited, { seconds: reply.data.retry_after ?? "60" }));
    return true;
  }
  const state = connectionOf(reply);
  if (state === "online") {
    // A refusal of the request itself (400, 404): say it, it is not about the ticket.
    show("notice", text.error, reply.data.error || "");
    return true;
  }
  setConnection(state);
  return decideHere(scan, whyNoAnswer(reply));
}

function doorWindow() {
  const option = eventSelect.selectedOptions[0];
  const event = list && list.event.slug === eventSelect.value ? list.event : null;
  const opens = event ? event.door_opens_at : option && option.dataset.opens;
  const closes = event ? event.door_closes_at : option && option.dataset.closes;
  return opens ? [new Date(opens), new Date(closes)] : null;
}

// The door list's answer, on this phone (no connection, or the login is gone).
async function decideHere(scan, why) {
  const note = connection === "auth" ? text.login_again_detail : `${why ? why + " " : ""}${text.no_connection_offline}`;
  if (!list) {
    show("offline", connection === "auth" ? text.login_again : text.no_connection, text.no_connection_no_list, why);
    return false;
  }
  const window_ = doorWindow();
  const now = new Date(scan.scannedAt);
  if (window_ && !(window_[0] <= now && now < window_[1])) {
    show("wrong", text.door_closed, doorNote.textContent, note);
    return true;
  }
  const decision = decideOffline(list, parseCode(scan.code, config), { identityChecked: scan.identityChecked });
  const row = decision.row;
  const holder = row ? holderOf(row.name, row.nim) : "";
  if (decision.result === "invalid") {
    show("invalid", text.invalid, reasonText(decision.reason), note);
  } else if (decision.result === "already") {
    show("already", alreadyTitle(row.admitted_at * 1000, row.admitted_by), holder, note);
  } else if (decision.result === "identity") {
    show("identity", text.identity, fill(text.identity_detail, { holder }), note);
    identityPending = { code: scan.code, method: scan.method };
  } else {
    const admitted = { ...row, admitted_at: Math.floor(scan.scannedAt / 1000), admitted_by: deviceName };
    list.put(admitted);
    localAdmissions.set(row.id, { at: admitted.admitted_at, by: deviceName });
    if (store) {
      // Stored before it is shown: an admission the phone could lose (closed tab, dead battery) never
      // reaches the server, and another phone would admit the same ticket again.
      try {
        await store.addScan({
          nonce: scan.nonce, event: list.event.slug, code: scan.code, method: scan.method, scanned_at: scan.scannedAt,
          device_id: deviceId, device_name: deviceName, identity_checked: scan.identityChecked, ticket_id: row.id,
          holder,
        });
      } catch {
        list.put(row);
        localAdmissions.delete(row.id);
        show("notice", text.error, text.not_saved);
        return true;
      }
      await refreshWaiting();
    }
    show("admitted", text.admitted_offline, holder, note);
    if (store) await store.putTicket(list.event.slug, admitted);
  }
  return true;
}

// An admission the server reported: the door list knows it at once (before the next delta).
function rememberAdmission(data) {
  if (!list || !data.ticket || !data.admitted_at) return;
  const row = list.byCode.get(data.ticket.redeem_code);
  if (!row) return;
  list.put({ ...row, admitted_at: Math.floor(Date.parse(data.admitted_at) / 1000),
    admitted_by: data.ticket.admitted_device || data.ticket.admitted_by || "" });
}

// --- the door list, its deltas and the sync ------------------------------------------------------

function withLocal(row) {
  const local = localAdmissions.get(row.id);
  return local && !row.admitted_at ? { ...row, admitted_at: local.at, admitted_by: local.by } : row;
}

// Whose door lists this phone keeps (static/js/door_forget.js deletes any other's on every page).
const doorAccount = document.body.dataset.doorAccount || "";

async function loadStoredList(slug) {
  list = null;
  listCursor = null;
  if (!store || !slug) return;
  const stored = await store.loadList(slug, doorAccount);
  if (stored) {
    list = new DoorList(stored.meta.event, stored.rows);
    listCursor = stored.meta.cursor;
    if (stored.meta.figures) renderFigures(stored.meta.figures); // as last seen online
  }
  for (const scan of await store.waitingScans(100000)) {
    if (scan.event === slug) localAdmissions.set(scan.ticket_id, { at: Math.floor(scan.scanned_at / 1000), by: scan.device_name });
  }
}

function doorOpenNow() {
  const window_ = doorWindow();
  const now = new Date();
  return Boolean(window_ && window_[0] <= now && now < window_[1]);
}

async function refreshList({ full = false } = {}) {
  const slug = eventSelect.value;
  if (!slug) return;
  const params = new URLSearchParams({ device_id: deviceId, device_name: deviceName, waiting: String(waiting) });
  const delta = !full && list && list.event.slug === slug && listCursor;
  if (delta) params.set("since", listCursor);
  if (!list) listState.textContent = text.list_loading;
  const reply = await request(`${eventUrl(config.list, slug)}?${params}`);
  if (slug !== eventSelect.value) return; // the event was changed meanwhile
  if (reply.status !== 200) {
    setConnection(connectionOf(reply));
    if (!list) listState.textContent = text.list_failed;
    return;
  }
  setConnection("online");
  const data = reply.data;
  const rows = rowsFromList(data.fields, data.tickets);
  if (data.full || !list) {
    list = new DoorList(data.event, rows.map(withLocal));
  } else {
    list.event = data.event;
    rows.forEach((row) => list.put(withLocal(row)));
    data.gone.forEach((id) => list.remove(id));
  }
  listCursor = data.cursor;
  if (store) {
    const meta = { cursor: data.cursor, event: data.event, figures: data.figures, updated: Date.now(), owner: doorAccount };
    await store.saveList(slug, meta, rows.map(withLocal), {
      full: data.full, gone: data.gone,
    });
    if (data.conflicts.length) await store.markSynced(data.conflicts.map(conflictRecord(slug)), { create: true });
  }
  renderFigures(data.figures);
  renderListState();
  cardHint.hidden = !data.event.accepts_student_card;
  cardHint.textContent = text.card_hint;
  if (data.conflicts.length) renderConflicts();
  if (waiting > 0) await syncNow();
}

function conflictRecord(slug) {
  return (conflict) => ({
    nonce: conflict.nonce, event: slug, conflict: true, reason: conflict.reason, holder: holderOf(conflict.holder_name || "?", conflict.nim),
    scanned_at: Date.parse(conflict.scanned_at), admitted_at: conflict.admitted_at, admitted_by: conflict.admitted_by,
  });
}

// Send every waiting scan, one request per event: the server applies them in scan-time order.
async function syncNow() {
  if (syncing || !store) return;
  syncing = true;
  try {
    const scans = await store.waitingScans(500);
    const events = [...new Set(scans.map((scan) => scan.event))];
    for (const slug of events) {
      const batch = scans.filter((scan) => scan.event === slug);
      const reply = await request(eventUrl(config.sync, slug), {
        method: "POST",
        timeout: SYNC_TIMEOUT_MS,
        body: JSON.stringify({
          device_id: deviceId, device_name: deviceName, sent_at: Date.now(), waiting_after: Math.max(0, waiting - batch.length),
          scans: batch.map((scan) => ({
            nonce: scan.nonce, code: scan.code, scanned_at: scan.scanned_at, method: scan.method,
            identity_checked: scan.identity_checked,
          })),
        }),
      });
      if (reply.status !== 200) {
        setConnection(connectionOf(reply));
        break;
      }
      const answers = reply.data.results.map((answer) => ({
        nonce: answer.nonce, result: answer.result, reason: answer.reason, conflict: answer.conflict,
        admitted_at: answer.admitted_at,
        admitted_by: answer.ticket ? answer.ticket.admitted_device || answer.ticket.admitted_by : null,
      }));
      await store.markSynced(answers);
      batch.forEach((scan) => localAdmissions.delete(scan.ticket_id));
      const conflicts = answers.filter((answer) => answer.conflict);
      if (conflicts.length) {
        const first = batch.find((scan) => scan.nonce === conflicts[0].nonce);
        resultNote.textContent = fill(text.conflict_new, {
          holder: first ? first.holder : "?", time: wib(conflicts[0].admitted_at), device: conflicts[0].admitted_by || "?",
        });
      }
    }
  } finally {
    syncing = false;
    await refreshWaiting();
    await renderConflicts();
  }
  if (waiting > 0 && connection === "online") schedulePoll(0);
}

function schedulePoll(delay = POLL_MS) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, delay);
}

async function poll() {
  try {
    if (eventSelect.value && (list || doorOpenNow())) await refreshList();
    else if (waiting > 0) await syncNow();
  } finally {
    schedulePoll();
  }
}

function renderListState() {
  if (!list) {
    listState.textContent = text.list_none;
    delete listState.dataset.tickets;
    return;
  }
  listState.textContent = fill(text.list_state, { n: list.size, time: wib(Date.now(), { seconds: true }) });
  listState.dataset.tickets = String(list.size);
}

function renderFigures(figures) {
  figuresLine.textContent = `${fill(text.figures, {
    admitted: figures.admitted, issued: figures.issued, per_minute: figures.arrivals_last_minute,
  })} · ${fill(text.figures_sync, { waiting: figures.waiting_to_sync, conflicts: figures.conflicts })}`;
  figuresLine.dataset.admitted = String(figures.admitted);
  phonesList.replaceChildren(
    ...figures.phones.map((phone) => {
      const item = document.createElement("li");
      item.textContent = fill(text.figure_phone, { name: phone.name, admitted: phone.admitted, waiting: phone.waiting || 0 });
      return item;
    }),
  );
}

async function renderConflicts() {
  if (!store || !eventSelect.value) return;
  const conflicts = await store.conflicts(eventSelect.value);
  conflictsPanel.hidden = conflicts.length === 0;
  conflictList.replaceChildren(
    ...conflicts.map((conflict) => {
      const item = document.createElement("li");
      const values = { holder: conflict.holder || "?", time: wib(conflict.admitted_at), device: conflict.admitted_by || "?",
        scanned: wib(conflict.scanned_at), reason: reasonText(conflict.reason) };
      item.textContent = conflict.admitted_at && !conflict.reason ? fill(text.conflict_line, values) : fill(text.conflict_refused, values);
      return item;
    }),
  );
}

// --- look-up by NIM or name (a dead phone) -----------------------------------------------------

function renderLookup() {
  const query = lookupInput.value;
  if (!query.trim()) {
    lookupResults.replaceChildren();
    return;
  }
  if (!list) {
    const item = document.createElement("li");
    item.textContent = text.lookup_need_list;
    lookupResults.replaceChildren(item);
    return;
  }
  const found = list.search(query);
  if (!found.length) {
    const item = document.createElement("li");
    item.textContent = text.lookup_none;
    lookupResults.replaceChildren(item);
    return;
  }
  lookupResults.replaceChildren(
    ...found.map((row) => {
      const item = document.createElement("li");
      item.dataset.nim = row.nim;
      const who = document.createElement("span");
      who.textContent = holderOf(row.name, row.nim);
      item.append(who);
      if (row.admitted_at) {
        const state = document.createElement("span");
        state.className = "muted";
        state.textContent = ` · ${fill(text.lookup_admitted, { time: wib(row.admitted_at * 1000) })} (${row.admitted_by})`;
        item.append(state);
      } else {
        const admit = document.createElement("button");
        admit.type = "button";
        admit.className = "button";
        admit.textContent = text.lookup_admit;
        admit.addEventListener("click", async () => {
          await submitScan(row.code, { identityChecked: true, method: "lookup" });
          renderLookup();
        });
        item.append(admit);
      }
      return item;
    }),
  );
}

// --- the door window ----------------------------------------------------------------------------

function showDoor() {
  const window_ = doorWindow();
  if (!window_) {
    doorNote.textContent = "";
    return;
  }
  const values = { opens: wib(window_[0], { day: true }), closes: wib(window_[1], { day: true }) };
  const isOpen = doorOpenNow();
  doorNote.textContent = fill(isOpen ? text.door_open_note : text.door_closed_note, values);
  doorNote.dataset.open = String(isOpen);
}

// --- the camera ---------------------------------------------------------------------------------

function onCameraCode(code) {
  const now = Date.now();
  if (code === lastCameraCode && now - lastCameraAt < DEDUPE_MS) return;
  lastCameraCode = code;
  lastCameraAt = now;
  submitScan(code);
}

// Why the camera cannot work here, in the words the volunteer needs to fix it (null: it may).
function cameraBlocker() {
  if (!window.isSecureContext) return ["insecure", text.camera_insecure];
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return ["unsupported", text.camera_unsupported];
  return null;
}

function cameraFailure(error) {
  const name = (error && error.name) || "";
  const message = String((error && error.message) || error || "");
  if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") {
    return ["denied", text.camera_denied];
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || /not found/i.test(message)) {
    return ["none", text.camera_none];
  }
  if (name === "NotReadableError" || name === "AbortError") return ["busy", text.camera_busy];
  return ["failed", fill(text.camera_failed, { reason: name || message || "?" })];
}

function cameraProblem([reason, sentence]) {
  scanner = null;
  cameraNote.textContent = sentence;
  cameraNote.dataset.reason = reason;
}

async function startCamera() {
  const blocker = cameraBlocker();
  if (blocker) {
    cameraProblem(blocker);
    return;
  }
  try {
    // Ask for the camera ourselves first: qr-scanner reports every failure as "Camera not
    // found.", while the browser's own error says whether it was refused, missing or busy.
    const probe = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    probe.getTracks().forEach((track) => track.stop());
  } catch (error) {
    cameraProblem(cameraFailure(error));
    return;
  }
  try {
    const { default: QrScanner } = await import(config.qr_scanner);
    scanner = new QrScanner(video, (result) => onCameraCode(result.data), {
      returnDetailedScanResult: true,
      // Its highlight is SVG with inline styles, which the Content-Security-Policy refuses:
      // scan.css frames the video instead.
      highlightScanRegion: false,
      maxScansPerSecond: 5,
    });
    await scanner.start();
    stopBarcodes = await startBarcodes(video, onCameraCode, config.zxing);
    cameraToggle.textContent = text.camera_stop;
    cameraNote.textContent = "";
    delete cameraNote.dataset.reason;
    app.classList.add("camera-on");
  } catch (error) {
    if (scanner) scanner.destroy();
    cameraProblem(cameraFailure(error));
  }
}

function stopCamera() {
  if (stopBarcodes) stopBarcodes();
  stopBarcodes = null;
  if (scanner) {
    scanner.stop();
    scanner.destroy();
    scanner = null;
  }
  cameraToggle.textContent = text.camera_start;
  app.classList.remove("camera-on");
}

// --- wiring -------------------------------------------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const code = codeInput.value;
  codeInput.value = ""; // a wedge scanner may type the next code at once
  submitScan(code).then((answered) => {
    if (!answered && !codeInput.value) codeInput.value = code; // nothing decided: keep it to try again
    codeInput.focus();
  });
});

// A keyboard-wedge scanner types into whatever has the focus: keys pressed outside a field go to
// the code field (the scanner's Enter then submits it).
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) {
    return;
  }
  if (event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey) codeInput.focus();
});

identityConfirm.addEventListener("click", () => {
  if (identityPending) submitScan(identityPending.code, { identityChecked: true, method: identityPending.method });
});

cameraToggle.addEventListener("click", () => (scanner ? stopCamera() : startCamera()));
eventSelect.addEventListener("change", async () => {
  lastCameraCode = "";
  localAdmissions.clear();
  await loadStoredList(eventSelect.value);
  renderListState();
  renderConflicts();
  showDoor();
  schedulePoll(0);
});
listDownload.addEventListener("click", () => refreshList({ full: true }));
lookupInput.addEventListener("input", renderLookup);
deviceNameInput.addEventListener("change", () => {
  deviceName = deviceNameInput.value.trim().slice(0, 40) || config.user;
  deviceNameInput.value = deviceName;
  localStorage.setItem("door-device-name", deviceName);
});
window.addEventListener("online", () => schedulePoll(0));
window.addEventListener("offline", () => setConnection("offline"));

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register(config.worker, { scope: config.scope }).catch(() => undefined);
}

async function start() {
  setConnection(connection);
  try {
    store = await openStore();
  } catch {
    store = null; // private mode without IndexedDB: online scanning only
  }
  await loadStoredList(eventSelect.value);
  renderListState();
  await refreshWaiting();
  await renderConflicts();
  showDoor();
  app.dataset.ready = "true";
  schedulePoll(0);
}

showDoor();
setInterval(showDoor, 30_000); // the door opens and closes while the page stays open
codeInput.focus();
start();
