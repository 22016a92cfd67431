/* Event page: live seat counter, countdown to claim opening, and the claim button.
 * Reads its settings from the #event-config JSON block (no inline scripts). */
(function () {
  "use strict";
  var configNode = document.getElementById("event-config");
  if (!configNode) { return; }
  var config = JSON.parse(configNode.textContent);
  var msg = config.messages;
  var POLL_MS = 5000;

  var remainingNode = document.getElementById("remaining");
  var stateLine = document.getElementById("state-line");
  var countdownNode = document.getElementById("countdown");
  var form = document.getElementById("claim-form");
  // No button for a ticket holder, an unverified student or a visitor who is not logged in: the
  // page says why (and how to log in) instead.
  var button = document.getElementById("claim-button") || document.createElement("button");
  var messageNode = document.getElementById("claim-message");
  var waitlistBox = document.getElementById("waitlist-box");
  var logInFirst = document.getElementById("log-in-first");

  // Server clock minus browser clock, so a wrong phone clock does not shift the countdown.
  // server_now was taken while the page was rendered, i.e. about when its first byte left the
  // server: compare it with the browser's clock at that moment, not when this script runs
  // (a slow phone parses the page for hundreds of milliseconds first).
  var timing = window.performance && window.performance.timing;
  var receivedAt = timing && timing.responseStart ? timing.responseStart : Date.now();
  var clockOffset = Date.parse(config.server_now) - receivedAt;
  var event = config.event;
  var opensAt = Date.parse(event.claim_opens_at);
  var pollTimer = null;
  var retryUntil = 0;      // set by a 429: the button stays off until then
  var claiming = false;
  var holder = false;      // a 409: this student holds a ticket, there is nothing left to claim

  function serverNow() { return Date.now() + clockOffset; }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatSeconds(total) {
    total = Math.max(0, Math.ceil(total));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return (h > 0 ? h + ":" + pad(m) : m) + ":" + pad(s);
  }

  function stateLabel(status) { return msg[status] || status; }

  // A shuffled opening accepts claims before the window opens (into the pre-queue).
  function claimable() {
    return event.status === "open" || (event.status === "not_open" && !!config.prequeue_open);
  }

  // Sold out or closed: the waiting list is what is left to do (the server rendered it hidden).
  function waitlistOpen() { return event.status === "sold_out" || event.status === "closed"; }

  function render() {
    remainingNode.textContent = String(event.remaining);
    var badge = stateLine.querySelector(".badge") || document.createElement("span");
    badge.className = "badge badge-" + event.status;
    badge.textContent = stateLabel(event.status);
    if (!badge.parentNode) { stateLine.appendChild(badge); }
    var waiting = retryUntil > serverNow();
    button.disabled = holder || claiming || waiting || !claimable();
    if (waitlistBox && !holder) { waitlistBox.hidden = !waitlistOpen(); }
    if (logInFirst) {
      Array.prototype.forEach.call(logInFirst.querySelectorAll("[data-when]"), function (node) {
        node.hidden = (node.getAttribute("data-when") === "waitlist") !== waitlistOpen();
      });
    }
    tick();
  }

  function tick() {
    var now = serverNow();
    if (retryUntil > now) {
      // The wait counts down here (not read out every second: no live region); the sentence below
      // the button says why, once, without a number that would stand still.
      countdownNode.hidden = false;
      countdownNode.textContent = msg.retry_in + " " + formatSeconds((retryUntil - now) / 1000);
      return;
    }
    if (retryUntil) {            // a rate-limit wait just ended: the button is back, the sentence goes
      retryUntil = 0;
      button.disabled = holder || claiming || !claimable();
      if (messageNode.getAttribute("data-retry")) { hideMessage(); }
    }
    if (event.status === "not_open") {
      var left = (opensAt - now) / 1000;
      countdownNode.hidden = false;
      countdownNode.textContent = msg.opens_in + " " + formatSeconds(left);
      if (left <= 0) {
        // Opening time reached: trust the clock now, confirm with the server.
        event.status = event.remaining > 0 ? "open" : "sold_out";
        render();
        poll();
      }
    } else {
      countdownNode.hidden = true;
    }
  }

  var pollPausedUntil = 0;   // a 429 on the poll backs off for its Retry-After

  function poll() {
    if (Date.now() < pollPausedUntil) { return; }
    fetch(config.api_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 429) {
          pollPausedUntil = Date.now() + 1000 * Number(response.headers.get("Retry-After") || 30);
        }
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data) { return; }
        event = data;
        opensAt = Date.parse(data.claim_opens_at);
        render();
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  function startPolling() {
    stopPolling();
    pollTimer = window.setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer !== null) { window.clearInterval(pollTimer); pollTimer = null; }
  }

  // A hidden tab does not poll: thousands of background tabs must not load the server.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { stopPolling(); } else { poll(); startPolling(); }
  });

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function hideMessage() {
    messageNode.hidden = true;
    messageNode.textContent = "";
    messageNode.removeAttribute("data-retry");
  }

  function showMessage(text, link, ok) {
    messageNode.removeAttribute("data-retry");
    messageNode.textContent = text || "";
    messageNode.className = "claim-message" + (ok ? " ok" : "");
    if (link) {
      messageNode.appendChild(document.createTextNode(" "));
      var anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      messageNode.appendChild(anchor);
    }
    messageNode.hidden = false;
  }

  function handleClaim(status, data, response) {
    data = data || {};
    if (status === 202 || status === 200) {
      if (data.queue_id) {
        claiming = true;         // keep the button off while the queue page loads
        window.location.assign(config.queue_url.replace("{queue_id}", encodeURIComponent(data.queue_id)));
        return;
      }
    }
    if (status === 409) {
      // Whatever else the page said (a wait, a countdown): the student holds a ticket.
      var ticketUrl = data.ticket && data.ticket.url;
      holder = !!data.ticket;
      retryUntil = 0;
      if (holder && waitlistBox) { waitlistBox.hidden = true; }
      showMessage(data.error, ticketUrl ? { href: ticketUrl, text: msg.have_ticket } : null, true);
      return;
    }
    if (status === 401) {
      showMessage(data.error || "", { href: config.login_url, text: msg.log_in });
      return;
    }
    if (status === 429) {
      var wait = Number(data.retry_after || response.headers.get("Retry-After") || 60);
      retryUntil = serverNow() + wait * 1000;
      showMessage(msg.too_many);
      messageNode.setAttribute("data-retry", "1");  // it goes when the button comes back
      render();
      return;
    }
    if (status === 425 && data.opens_in) {
      opensAt = serverNow() + Number(data.opens_in) * 1000;
      event.status = "not_open";
      showMessage(data.error);
      render();
      return;
    }
    if (status === 410) {
      if (data.waitlist && data.waitlist.status === "waiting") { showWaitlistPlace(data.waitlist); }
      event.status = data.code === "claim_closed" ? "closed" : "sold_out";
      poll();
    }
    showMessage(data.error || msg.network + " (" + status + ")");
  }

  // A claim refused as sold out put the student on the waiting list: say where, as a reload would.
  function showWaitlistPlace(place) {
    var standing = document.getElementById("waitlist-standing");
    var sentence = document.getElementById("waitlist-place-sentence");
    var join = document.getElementById("waitlist-join-form");
    if (!standing || !sentence) { return; }
    sentence.textContent = msg.waitlist_place.replace("%(n)s", String(place.position));
    standing.hidden = false;
    if (join) { join.hidden = true; }
  }

  // The button is a real form (it works without JavaScript); this claims without leaving the page.
  if (form) { form.addEventListener("submit", function (submitEvent) {
    submitEvent.preventDefault();
    if (button.disabled) { return; }
    claiming = true;
    button.disabled = true;
    showMessage(msg.claiming, null, true);
    var statusCode = 0, resp = null;
    fetch(config.claim_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", "Content-Type": "application/json" },
      body: "{}"
    })
      .then(function (response) {
        statusCode = response.status;
        resp = response;
        return response.json().catch(function () { return null; });
      })
      .then(function (data) {
        claiming = false;
        handleClaim(statusCode, data, resp);
        render();
      })
      .catch(function () {
        claiming = false;
        showMessage(msg.network);
        render();
      });
  }); }

  // Tick on the countdown's own whole seconds, and exactly at the opening: a free-running
  // one-second interval enabled the button up to a second after the announced time.
  function scheduleTick() {
    var delay = 1000;
    if (event.status === "not_open" && retryUntil <= serverNow()) {
      var left = opensAt - serverNow();
      if (left > 0) { delay = left % 1000 || 1000; }
    }
    window.setTimeout(function () { tick(); scheduleTick(); }, delay);
  }

  render();
  scheduleTick();
  if (!document.hidden) { startPolling(); }
})();
