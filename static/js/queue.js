/* Waiting page: live position, estimated wait and outcome of one claim.
 * Websocket first; if it fails or closes, poll the status API with backoff and say so quietly.
 * Between messages the estimated wait counts down locally so the page moves at least every 2 s. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("queue-config").textContent);
  var msgs = config.messages;
  var root = document.getElementById("queue");
  var el = function (id) { return document.getElementById(id); };
  var state = config.entry;
  var etaAt = null; // Date.now() when eta_seconds was last received
  var socket = null;
  var pollDelay = 1000;
  var pollTimer = null;
  var lastHeard = Date.now();
  var terminal = function (s) { return s === "completed" || s === "failed"; };

  // "You are number 812 for 500 seats": rebuilt from the place and the seats left that the
  // pushes carry, so it never keeps the numbers of the page load.
  function outlookSentence() {
    var forms = msgs.outlook && (state.seats_left === 1 ? msgs.outlook.one : msgs.outlook.other);
    var text = forms && state.outlook && forms[state.outlook];
    if (!text || state.position == null || state.seats_left == null) { return state.outlook_message || ""; }
    return text.replace("%(pos)s", String(state.position)).replace("%(seats)s", String(state.seats_left));
  }

  function render() {
    root.setAttribute("data-status", state.status);
    el("queue-status").textContent = msgs[state.status] || state.status;
    el("queue-figures").hidden = terminal(state.status);
    el("queue-position").textContent = state.position == null ? "–" : String(state.position);
    var eta = state.eta_seconds;
    if (eta != null && etaAt !== null) {
      eta = Math.max(0, eta - Math.floor((Date.now() - etaAt) / 1000));
    }
    el("queue-eta").textContent = eta == null ? "" : msgs.seconds.replace("%(n)s", String(eta));
    if (state.ticket) {
      el("queue-ticket").hidden = false;
      el("queue-redeem").textContent = state.ticket.redeem_display || state.ticket.redeem_code;
      el("queue-ticket-link").setAttribute("href", state.ticket.url);
    }
    var outlook = el("queue-outlook");
    if (outlook) {
      var sentence = outlookSentence();
      outlook.hidden = !sentence || terminal(state.status);
      outlook.textContent = sentence;
      outlook.setAttribute("data-outlook", state.outlook || "");
    }
    var seats = el("queue-seats");
    if (seats && state.seats_left != null && msgs.seats_left) {
      // Both plural forms come from the server (ngettext for 1 and for 2): Indonesian has one.
      var form = state.seats_left === 1 ? msgs.seats_left_one : msgs.seats_left;
      seats.textContent = form.replace("%(n)s", String(state.seats_left));
    }
    if (state.prequeue && !terminal(state.status)) {
      el("queue-status").textContent = msgs.prequeue;
    }
    if (state.status === "failed" && state.reason) {
      el("queue-reason").hidden = false;
      el("queue-reason").textContent = state.reason;
    }
    // Decided: how live updates arrive no longer matters.
    if (terminal(state.status)) { el("queue-mode").hidden = true; }
  }

  function apply(update) {
    lastHeard = Date.now();
    for (var key in update) {
      if (Object.prototype.hasOwnProperty.call(update, key)) { state[key] = update[key]; }
    }
    etaAt = Date.now();
    render();
    if (terminal(state.status)) { stop(); }
  }

  function stop() {
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
    if (socket) { try { socket.close(1000); } catch (e) { /* already closed */ } socket = null; }
  }

  function poll() {
    pollTimer = null;
    fetch(config.status_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (data) { pollDelay = 1000; apply(data); })
      .catch(function () { pollDelay = Math.min(pollDelay * 2, 15000); })
      .then(function () { if (!terminal(state.status) && !socket) { pollTimer = setTimeout(poll, pollDelay); } });
  }

  function fallBackToPolling() {
    socket = null;
    if (terminal(state.status) || pollTimer) { return; }
    var mode = el("queue-mode");
    mode.textContent = msgs.polling;
    mode.hidden = false;
    pollTimer = setTimeout(poll, pollDelay);
  }

  function connect() {
    if (!("WebSocket" in window)) { fallBackToPolling(); return; }
    // The websocket process's origin (data-websocket-origin, from settings.WEBSOCKET_ORIGIN);
    // empty: this page's own origin, where a proxy routes /ws/ to it.
    var origin = document.body.getAttribute("data-websocket-origin") ||
      (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host;
    try {
      socket = new WebSocket(origin + config.ws_path);
    } catch (e) { fallBackToPolling(); return; }
    socket.onmessage = function (event) {
      try { apply(JSON.parse(event.data)); } catch (e) { /* ignore a malformed hint */ }
    };
    socket.onclose = function () { if (!terminal(state.status)) { fallBackToPolling(); } };
  }

  render();
  if (!terminal(state.status)) {
    etaAt = Date.now();
    connect();
    // Tick every second: the wait counts down, and a silent socket is double-checked by a poll.
    var ticker = setInterval(function () {
      if (terminal(state.status)) { clearInterval(ticker); return; }
      render();
      if (socket && Date.now() - lastHeard > 5000 && !pollTimer) {
        lastHeard = Date.now();
        fetch(config.status_url, { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (data) { if (data) { apply(data); } })
          .catch(function () { /* the socket may still deliver */ });
      }
    }, 1000);
  }
})();
