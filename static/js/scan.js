// Door scan page: camera QR scanning (vendored qr-scanner) and manual redeem-code entry,
// both posting to the check-in API for the event chosen at this door. Every result is shown
// big for ~2 s, then the page is ready for the next ticket; the same code seen again by the
// camera within a few seconds is ignored. Each answer is numbered and flashes, so two equal
// answers in a row are visibly two scans.

const app = document.getElementById("scan-app");
const form = document.getElementById("scan-form");
const eventSelect = document.getElementById("scan-event");
const codeInput = document.getElementById("scan-code");
const resultBox = document.getElementById("scan-result");
const resultTitle = document.getElementById("scan-result-title");
const resultDetail = document.getElementById("scan-result-detail");
const resultMeta = document.getElementById("scan-result-meta");
const doorNote = document.getElementById("scan-door");
const video = document.getElementById("scan-video");
const cameraToggle = document.getElementById("scan-camera-toggle");
const cameraNote = document.getElementById("scan-camera-note");
const identityConfirm = document.getElementById("scan-identity-confirm");
const text = JSON.parse(document.getElementById("scan-messages").textContent);
const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;

const RESULT_HOLD_MS = 2000; // how long a result stays before the page is ready again
const DEDUPE_MS = 5000; // a phone held still re-reads the same QR many times a second

let busy = false;
let lastCode = "";
let lastCodeAt = 0;
let resetTimer = null;
let scanner = null;
let scanCount = 0;
let identityCode = ""; // the fixed code waiting for staff to compare the student ID card

function fill(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => (values[key] ?? ""));
}

function wibTime(iso, withSeconds = false) {
  if (!iso) return "";
  const options = { timeZone: "Asia/Jakarta", hour: "2-digit", minute: "2-digit" };
  if (withSeconds) options.second = "2-digit";
  return new Date(iso).toLocaleTimeString("en-GB", options);
}

function wibDayTime(iso) {
  return new Date(iso).toLocaleString("en-GB", {
    timeZone: "Asia/Jakarta", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
}

function showDoor() {
  const option = eventSelect.selectedOptions[0];
  if (!option || !option.value) {
    doorNote.textContent = "";
    return;
  }
  const opens = new Date(option.dataset.opens);
  const closes = new Date(option.dataset.closes);
  const now = new Date();
  const values = { opens: wibDayTime(opens), closes: wibDayTime(closes) };
  const isOpen = opens <= now && now < closes;
  doorNote.textContent = fill(isOpen ? text.door_open_note : text.door_closed_note, values);
  doorNote.dataset.open = String(isOpen);
}

function show(state, title, detail) {
  resultBox.className = `scan-result scan-${state}`;
  resultBox.dataset.result = state;
  resultTitle.textContent = title;
  resultDetail.textContent = detail;
  if (state !== "checking") {
    // An answer: number it and replay the flash, even when it equals the previous one.
    scanCount += 1;
    resultBox.dataset.scan = String(scanCount);
    resultMeta.textContent = fill(text.scan_meta, { n: scanCount, time: wibTime(new Date().toISOString(), true) });
    void resultBox.offsetWidth; // restart the CSS animation
    resultBox.classList.add("scan-flash");
  }
  clearTimeout(resetTimer);
  identityConfirm.hidden = state !== "identity";
  if (state !== "identity") identityCode = "";
  // An identity check waits for the staff's decision; every other answer clears itself.
  if (state !== "idle" && state !== "checking" && state !== "identity") {
    resetTimer = setTimeout(() => {
      resultBox.className = "scan-result scan-idle";
      resultBox.dataset.result = "idle";
      resultTitle.textContent = text.ready;
      codeInput.focus();
    }, RESULT_HOLD_MS);
  }
}

function render(status, data) {
  if (status === 429) {
    show("invalid", text.error, fill(text.rate_limited, { seconds: data.retry_after ?? "60" }));
    return;
  }
  if (status === 409 && data.code === "outside_door_window") {
    show("wrong", text.door_closed, data.error || "");
    showDoor();
    return;
  }
  if (status !== 200) {
    show("invalid", text.error, data.error || "");
    return;
  }
  const ticket = data.ticket;
  const holder = ticket ? `${ticket.holder_name}${ticket.nim ? " · " + ticket.nim : ""}` : "";
  switch (data.result) {
    case "admitted":
      show("admitted", text.admitted, holder);
      break;
    case "already_admitted":
      show(
        "already",
        `${text.already_admitted} ${fill(text.already_detail, { time: wibTime(data.admitted_at), staff: ticket.admitted_by || "?" })}`,
        holder,
      );
      break;
    case "needs_identity_check":
      show("identity", text.identity, fill(text.identity_detail, { holder }));
      break;
    case "wrong_event":
      show("wrong", text.wrong_event, `${fill(text.wrong_detail, { event: ticket.event_title || ticket.event })} — ${holder}`);
      break;
    default:
      show("invalid", text.invalid, text.invalid_detail);
  }
}

async function checkIn(code, identityChecked = false) {
  code = code.trim();
  const now = Date.now();
  if (!code) {
    show("invalid", text.error, text.empty);
    return;
  }
  if (!eventSelect.value) {
    show("invalid", text.error, text.choose_event);
    return;
  }
  if (busy || (code === lastCode && now - lastCodeAt < DEDUPE_MS)) return;
  busy = true;
  lastCode = code;
  lastCodeAt = now;
  show("checking", text.checking, "");
  try {
    const response = await fetch(app.dataset.api, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
      body: JSON.stringify({ code, event: eventSelect.value, identity_checked: identityChecked }),
    });
    let data = {};
    try {
      data = await response.json();
    } catch {
      data = {};
    }
    render(response.status, data);
    if (data.result === "needs_identity_check") identityCode = code;
  } catch {
    show("invalid", text.error, text.network);
    lastCode = ""; // a network failure must not block a retry of the same code
  } finally {
    busy = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const code = codeInput.value;
  // A deliberate re-type of the same code is a new request: only camera reads are de-duplicated.
  lastCode = "";
  checkIn(code).then(() => {
    codeInput.value = "";
    codeInput.focus();
  });
});

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
    const { default: QrScanner } = await import(app.dataset.scanner);
    scanner = new QrScanner(video, (result) => checkIn(result.data), {
      returnDetailedScanResult: true,
      // Its highlight is SVG with inline styles, which the Content-Security-Policy refuses:
      // scan.css frames the video instead.
      highlightScanRegion: false,
      maxScansPerSecond: 5,
    });
    await scanner.start();
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
  if (scanner) {
    scanner.stop();
    scanner.destroy();
    scanner = null;
  }
  cameraToggle.textContent = text.camera_start;
  app.classList.remove("camera-on");
}

identityConfirm.addEventListener("click", () => {
  const code = identityCode;
  lastCode = ""; // the same code again, on purpose
  if (code) checkIn(code, true);
});

cameraToggle.addEventListener("click", () => (scanner ? stopCamera() : startCamera()));
eventSelect.addEventListener("change", () => {
  lastCode = "";
  showDoor();
});
showDoor();
setInterval(showDoor, 30_000); // the door opens and closes while the page stays open
codeInput.focus();
