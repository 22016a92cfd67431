/* Monitoring dashboard: live tiles by short polling, 24-hour charts from the metric samples. */
(function () {
  "use strict";
  const root = document.getElementById("monitoring");
  if (!root) return;
  const label = (name) => root.dataset["label" + name.charAt(0).toUpperCase() + name.slice(1)] || name;
  const pollMs = (parseInt(root.dataset.pollSeconds, 10) || 5) * 1000;
  const status = document.getElementById("mon-status");
  const charts = {};
  const palette = ["#417690", "#d2302c", "#2e9d3a", "#e0b000", "#7a4fb5", "#1f9bb3", "#b5651d"];
  // Numbers and times as the page's language writes them: 137,5 and 22.15 on an Indonesian page.
  // No thousands separator, like the figures Django writes into the page itself.
  const lang = document.documentElement.lang || "id";
  const locale = lang === "id" ? "id-ID" : lang;
  const numberFormat = { maximumFractionDigits: 1, useGrouping: false };
  const numbers = new Intl.NumberFormat(locale, numberFormat);

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  function show(value, unit) {
    if (value === null || value === undefined) return "–";
    return (typeof value === "number" ? numbers.format(value) : value) + (unit || "");
  }

  function renderLive(data) {
    root.querySelectorAll("[data-metric]").forEach((el) => {
      el.textContent = show(data[el.dataset.metric], el.dataset.unit);
    });
    const remaining = document.getElementById("mon-remaining");
    remaining.replaceChildren();
    Object.entries(data.remaining || {}).forEach(([slug, count]) => {
      // Named by its title; red exactly while the remaining-tickets alert rule is crossed for it.
      const event = (data.events || {})[slug] || {};
      const tile = document.createElement("div");
      tile.className = "mon-tile" + (event.running_out ? " is-low" : "");
      tile.dataset.event = slug;
      tile.title = slug;
      const name = document.createElement("span");
      name.className = "mon-label";
      name.textContent = event.title || slug;
      const value = document.createElement("span");
      value.className = "mon-value";
      value.textContent = show(count);
      tile.append(name, value);
      remaining.append(tile);
    });
    Object.entries(data.health || {}).forEach(([part, colour]) => {
      const item = root.querySelector('[data-health="' + part + '"]');
      if (!item) return;
      item.dataset.colour = colour;
      item.querySelector(".mon-dot").className = "mon-dot " + colour;
      // The state in words too: colour alone says nothing to a colour-blind operator.
      const state = item.querySelector(".mon-health-state");
      if (state) state.textContent = label("health" + colour.charAt(0).toUpperCase() + colour.slice(1));
      const detail = (data.health_detail || {})[part];
      item.title = colour + (detail && detail.detail ? ": " + detail.detail : "");
    });
    renderDoor(data.door);
    status.classList.remove("is-error");
    status.textContent = label("updated") + " " + new Date(data.time).toLocaleTimeString(locale);
  }

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, key) => (values[key] ?? ""));
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function tile(labelText, value, name) {
    const box = element("div", "mon-tile");
    box.dataset.door = name;
    box.append(element("span", "mon-label", labelText), element("span", "mon-value", String(value)));
    return box;
  }

  // The door of each event open now: figures, phones, conflicts (monitoring.selectors.door_figures_now).
  function renderDoor(doors) {
    const container = document.getElementById("mon-door");
    const events = Object.entries(doors || {});
    if (!events.length) {
      container.replaceChildren(element("p", "mon-help", label("doorNone")));
      return;
    }
    container.replaceChildren(...events.map(([slug, door]) => {
      const block = element("div", "mon-door-event");
      block.dataset.event = slug;
      block.append(element("h3", "", door.title));
      const tiles = element("div", "mon-tiles");
      tiles.append(
        tile(label("doorAdmitted"), door.admitted + " / " + door.issued, "admitted"),
        tile(label("doorPerMinute"), door.arrivals_last_minute, "per_minute"),
        tile(label("doorWaiting"), door.waiting_to_sync, "waiting"),
        tile(label("doorConflicts"), door.conflicts, "conflicts"),
      );
      if (door.conflicts) tiles.lastChild.classList.add("is-low");
      block.append(tiles);
      if (door.phones.length) {
        const table = element("table", "mon-door-phones");
        const head = table.createTHead().insertRow();
        [label("doorPhone"), label("doorScans"), label("doorAdmitted"), label("doorOffline"), label("doorWaiting"),
          label("doorConflicts"), label("doorLastSeen")].forEach((text) => head.append(element("th", "", text)));
        const body = table.createTBody();
        door.phones.forEach((phone) => {
          const row = body.insertRow();
          [phone.name, phone.scans, phone.admitted, phone.offline, phone.waiting || 0, phone.conflicts,
            phone.last_seen_at ? new Date(phone.last_seen_at).toLocaleTimeString() : "–"].forEach((value) => {
            row.insertCell().textContent = String(value);
          });
        });
        block.append(table);
      }
      if (door.recent_conflicts.length) {
        const list = element("ul", "mon-door-conflicts");
        door.recent_conflicts.forEach((conflict) => {
          const values = {
            holder: conflict.holder_name || "?", nim: conflict.nim || "–", device: conflict.device,
            scanned: new Date(conflict.scanned_at).toLocaleTimeString(), by: conflict.admitted_by || "?",
            time: conflict.admitted_at ? new Date(conflict.admitted_at).toLocaleTimeString() : "", reason: conflict.reason,
          };
          list.append(element("li", "", fill(label(conflict.reason ? "doorRefusedLine" : "doorConflictLine"), values)));
        });
        block.append(list);
      }
      return block;
    }));
  }

  function renderAlerts(alerts) {
    const body = document.getElementById("mon-alerts-body");
    body.replaceChildren();
    if (!alerts.length) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = 6;
      cell.textContent = label("none");
      return;
    }
    alerts.slice(0, 20).forEach((alert) => {
      const row = body.insertRow();
      row.className = alert.state;
      const state = alert.state === "firing" || alert.state === "resolved" ? label("state" + alert.state.charAt(0).toUpperCase() + alert.state.slice(1)) : alert.state;
      [alert.rule, state, show(alert.value), show(alert.threshold),
        new Date(alert.started_at).toLocaleString(locale),
        alert.resolved_at ? new Date(alert.resolved_at).toLocaleString(locale) : ""].forEach((text) => {
        row.insertCell().textContent = text;
      });
    });
  }

  function lineChart(id, labels, datasets) {
    const canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return;
    const config = {
      type: "line",
      data: {
        labels: labels,
        datasets: datasets.map((d, i) => ({
          label: d.label, data: d.data, yAxisID: d.axis || "y", borderColor: palette[i % palette.length],
          backgroundColor: palette[i % palette.length], pointRadius: 0, borderWidth: 2, spanGaps: true, tension: 0.2,
        })),
      },
      options: {
        locale: locale,
        animation: false, responsive: true, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxTicksLimit: 8, autoSkip: true } },
          y: { beginAtZero: true, position: "left", ticks: { format: numberFormat } },
          y2: { beginAtZero: true, position: "right", display: datasets.some((d) => d.axis === "y2"), grid: { drawOnChartArea: false }, ticks: { format: numberFormat } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    };
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update("none");
    } else {
      charts[id] = new Chart(canvas, config);
    }
  }

  function renderHistory(history) {
    const samples = history.samples || [];
    const labels = samples.map((s) => {
      const t = new Date(s.taken_at);
      return t.getHours().toString().padStart(2, "0") + ":" + t.getMinutes().toString().padStart(2, "0");
    });
    const col = (name) => samples.map((s) => s[name]);
    const slugs = [...new Set(samples.flatMap((s) => Object.keys(s.remaining || {})))];
    // Each event against its own capacity (a 30-seat workshop beside a 500-seat lecture).
    const capacity = history.capacity || {};
    const titles = history.titles || {};
    const share = (count, slug) => (count == null || !capacity[slug] ? null : Math.round((1000 * count) / capacity[slug]) / 10);
    lineChart("chart-remaining", labels, slugs.map((slug) => ({
      label: titles[slug] || slug, data: samples.map((s) => share((s.remaining || {})[slug], slug)),
    })));
    root.dataset.remainingScale = "percent";
    lineChart("chart-traffic", labels, [
      { label: label("active"), data: col("active_users") },
      { label: label("claims"), data: col("claims_per_minute"), axis: "y2" },
    ]);
    lineChart("chart-latency", labels, [
      { label: label("p95"), data: col("p95_ms") },
      { label: label("errors"), data: col("error_rate"), axis: "y2" },
    ]);
    lineChart("chart-ratios", labels, [
      { label: label("cache"), data: col("cache_hit_ratio") },
      { label: label("success"), data: col("claim_success_rate") },
    ]);
    lineChart("chart-queue", labels, [
      { label: label("depth"), data: col("queue_depth") },
      { label: label("delay"), data: col("queue_delay_seconds"), axis: "y2" },
    ]);
    root.dataset.chartsDrawn = String(Object.keys(charts).length);
  }

  async function pollLive() {
    try {
      renderLive(await getJson(root.dataset.metricsUrl));
    } catch (error) {
      status.classList.add("is-error");
      status.textContent = label("offline");
    }
    window.setTimeout(pollLive, pollMs);
  }

  async function pollSlow() {
    try {
      const [history, alerts] = await Promise.all([getJson(root.dataset.historyUrl), getJson(root.dataset.alertsUrl)]);
      renderHistory(history);
      renderAlerts(alerts);
    } catch (error) {
      status.classList.add("is-error");
      status.textContent = label("offline");
    }
    window.setTimeout(pollSlow, 60000);
  }

  const form = document.getElementById("mon-export-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const params = new URLSearchParams();
    ["since", "until"].forEach((key) => { if (data.get(key)) params.set(key, data.get(key)); });
    window.location.href = "/api/monitoring/export/" + data.get("kind") + "." + data.get("fmt") + "?" + params.toString();
  });

  pollLive();
  pollSlow();
})();
