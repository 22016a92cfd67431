// Door scan page: camera QR scanning (vendored qr-scanner) and manual redeem-code entry,
// both posting to the check-in API. Every result is shown big for ~2 s, then the page is
// ready for the next ticket; the same code seen again within a few seconds is ignored.

const app = document.getElementById("scan-app");
const form = document.getElementById("scan-form");
const eventSelect = document.getElementById("scan-event");
const codeInput = document.getElementById("scan-code");
const resultBox = document.getElementById("scan-result");
const resultTitle = document.getElementById("scan-result-title");
const resultDetail = document.getElementById("scan-result-detail");
const video = document.getElementById("scan-video");
const cameraToggle = document.getElementById("scan-camera-toggle");
const cameraNote = document.getElementById("scan-camera-note");
const text = JSON.parse(document.getElementById("scan-messages").textContent);
const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;

const RESULT_HOLD_MS = 2000; // how long a result stays before the page is ready again
const DEDUPE_MS = 5000; // a phone held still re-reads the same QR many times a second

let busy = false;
let lastCode = "";
let lastCodeAt = 0;
let resetTimer = null;
let scanner = null;

function fill(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => (values[key] ?? ""));
}

function wibTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString("en-GB", { timeZone: "Asia/Jakarta", hour: "2-digit", minute: "2-digit" });
}

function show(state, title, detail) {
  resultBox.className = `scan-result scan-${state}`;
  resultBox.dataset.result = state;
  resultTitle.textContent = title;
  resultDetail.textContent = detail;
  clearTimeout(resetTimer);
  if (state !== "idle" && state !== "checking") {
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
    case "wrong_event":
      show("wrong", text.wrong_event, `${fill(text.wrong_detail, { event: ticket.event_title || ticket.event })} — ${holder}`);
      break;
    default:
      show("invalid", text.invalid, text.invalid_detail);
  }
}

async function checkIn(code) {
  code = code.trim();
  const now = Date.now();
  if (!code) {
    show("invalid", text.error, text.empty);
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
      body: JSON.stringify({ code, event: eventSelect.value || null }),
    });
    let data = {};
    try {
      data = await response.json();
    } catch {
      data = {};
    }
    render(response.status, data);
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

async function startCamera() {
  try {
    const { default: QrScanner } = await import(app.dataset.scanner);
    if (!(await QrScanner.hasCamera())) throw new Error("no camera");
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
    app.classList.add("camera-on");
  } catch {
    scanner = null;
    cameraNote.textContent = text.no_camera;
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

cameraToggle.addEventListener("click", () => (scanner ? stopCamera() : startCamera()));
eventSelect.addEventListener("change", () => {
  lastCode = "";
});
codeInput.focus();
