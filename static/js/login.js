/* Login page refused by a login limit: count down to the moment a new attempt is counted
   again, with the button disabled meanwhile (the server says how long: data-seconds). */
(function () {
  "use strict";
  var line = document.getElementById("login-retry");
  var left = document.getElementById("login-retry-left");
  var button = document.getElementById("login-button");
  if (!line || !left || !button) { return; }
  var endsAt = Date.now() + Number(line.getAttribute("data-seconds")) * 1000;

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function tick() {
    var total = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
    left.textContent = Math.floor(total / 60) + ":" + pad(total % 60);
    if (total === 0) {
      clearInterval(timer);
      line.hidden = true;
      button.disabled = false;
    }
  }

  button.disabled = true;
  var timer = setInterval(tick, 1000);
  tick();
})();
