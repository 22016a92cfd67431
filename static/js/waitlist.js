/* Waiting page, second chances: the waiting-list checkbox, the list position and a seat offer.
 * The offer arrives over the queue websocket (message with "offer") or, failing that, by polling
 * the waiting-list API every 5 s while the student is on the list. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("queue-config").textContent);
  var box = document.getElementById("waitlist");
  if (!box) { return; }
  var join = document.getElementById("waitlist-join");
  var place = document.getElementById("waitlist-place");
  var position = document.getElementById("waitlist-position");
  var offer = document.getElementById("waitlist-offer");
  var offerLink = document.getElementById("waitlist-offer-link");
  var queue = document.getElementById("queue");
  // The checkbox saves itself as soon as it changes: the form's button is for pages without scripts.
  document.getElementById("waitlist-save").hidden = true;

  // A claim that got a ticket needs no waiting list: hide it and stop asking.
  function won() {
    if (queue && queue.getAttribute("data-status") === "completed") {
      box.hidden = true;
      return true;
    }
    return false;
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function show(data) {
    if (!data) { return; }
    box.setAttribute("data-status", data.status || "");
    join.checked = data.status !== "left";
    place.hidden = data.status !== "waiting";
    position.textContent = data.position == null ? "–" : String(data.position);
    if (data.status === "offered" && data.url) {
      offer.hidden = false;
      offerLink.setAttribute("href", data.url);
    } else {
      offer.hidden = true;
    }
  }

  function poll() {
    if (won()) { return; }
    fetch(config.waitlist_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(show)
      .catch(function () { /* try again on the next tick */ });
  }

  join.addEventListener("change", function () {
    fetch(config.waitlist_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ join: join.checked })
    }).then(function (r) { return r.ok ? r.json() : null; }).then(show).catch(function () { /* kept as is */ });
  });

  // The queue page's own socket closes once the claim is decided; this one stays for offers.
  function listen() {
    if (!("WebSocket" in window)) { return null; }
    // The websocket process's origin (data-websocket-origin, from settings.WEBSOCKET_ORIGIN);
    // empty: this page's own origin, where a proxy routes /ws/ to it.
    var origin = document.body.getAttribute("data-websocket-origin") ||
      (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host;
    var socket = new WebSocket(origin + config.ws_path);
    socket.onmessage = function (event) {
      try {
        var data = JSON.parse(event.data);
        if (data.offer) { show({ status: "offered", url: data.offer.url }); }
      } catch (e) { /* ignore a malformed hint */ }
    };
    return socket;
  }

  var socket = listen();
  var pollTimer = setInterval(function () {
    if (won()) { clearInterval(pollTimer); return; }
    poll();
  }, 5000);

  // The moment the claim gets its ticket (queue.js sets data-status), the box goes: a decided page
  // shows only what is true after the decision, not a waiting-list checkbox for 5 more seconds.
  if (queue && "MutationObserver" in window) {
    new MutationObserver(function () {
      if (won()) {
        clearInterval(pollTimer);
        if (socket) { try { socket.close(1000); } catch (e) { /* already closed */ } }
      }
    }).observe(queue, { attributes: true, attributeFilter: ["data-status"] });
  }
})();
