/* Offer page: count the claim window down and claim the offered seat. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("offer-config").textContent);
  var form = document.getElementById("offer-form");
  var button = document.getElementById("offer-claim");
  var countdown = document.getElementById("offer-countdown");
  var message = document.getElementById("offer-message");
  if (!button || !form) { return; }
  var endsAt = Date.now() + config.seconds_left * 1000;

  function csrfToken() {
    var match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  var timer = setInterval(function () {
    var left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
    countdown.textContent = String(left);
    if (left === 0) { clearInterval(timer); button.disabled = true; message.hidden = false; message.textContent = config.messages.expired; }
  }, 1000);

  // A real form (it works without JavaScript); here it claims without a page load.
  form.addEventListener("submit", function (submitEvent) {
    submitEvent.preventDefault();
    button.disabled = true;
    message.hidden = false;
    message.textContent = config.messages.claiming;
    fetch(config.claim_url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); })
      .then(function (res) {
        if (res.ok && res.data.ticket) { window.location.assign(res.data.ticket.url); return; }
        message.textContent = (res.data && res.data.error) || config.messages.network;
      })
      .catch(function () { message.textContent = config.messages.network; button.disabled = false; });
  });
})();
