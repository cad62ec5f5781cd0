// Fanout dashboard: refreshes the overview's numbers and draws its
// charts as inline SVG, with standard browser APIs only. Everything else
// works without script.
(function () {
  "use strict";
  var el = document.getElementById("refresh");
  if (!el || !el.dataset.statsUrl) return;
  var url = el.dataset.statsUrl;
  var windowSeconds = { "5m": 300, "15m": 900, "1h": 3600, "24h": 86400 }[el.dataset.window] || 300;
  var history = {}; // chart key -> [per-second rates between refreshes]
  var last = {};    // chart key -> {count, at} of the previous refresh
  var loadedAt = Date.now();
  // initial is the count the server rendered with the page.
  function initial(key, field) {
    var cell = document.querySelector('[data-stat="' + CSS.escape(key + "." + field) + '"]');
    var n = cell ? Number(cell.textContent) : NaN;
    return isNaN(n) ? null : { count: n, at: loadedAt };
  }
  var maxPoints = 60;
  var svgNS = "http://www.w3.org/2000/svg";

  function pct(v) { return v === undefined || v === null ? "–" : (v * 100).toFixed(1) + "%"; }
  function lat(l) {
    if (!l) return "– / – / –";
    return l.p50.toFixed(1) + " / " + l.p95.toFixed(1) + " / " + l.p99.toFixed(1);
  }
  function failures(m) {
    var keys = Object.keys(m || {}).sort();
    if (!keys.length) return "none";
    return keys.map(function (k) { return k + " " + m[k]; }).join(", ");
  }
  function age(s) {
    if (!s || s <= 0) return "–";
    s = Math.round(s);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60) + "s";
    return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
  }
  function set(key, text) {
    var cell = document.querySelector('[data-stat="' + CSS.escape(key) + '"]');
    if (cell && cell.textContent !== text) cell.textContent = text;
  }
  function setDead(name, n) {
    var cell = document.querySelector('[data-stat="' + CSS.escape("targets." + name + ".dead") + '"]');
    if (!cell) return;
    if (String(n) === cell.textContent) return;
    cell.textContent = "";
    if (n > 0) {
      var a = document.createElement("a");
      a.href = "/ui/dead?target=" + encodeURIComponent(name);
      a.textContent = String(n);
      cell.appendChild(a);
    } else {
      cell.textContent = "0";
    }
  }
  // draw adds the rate since the previous refresh (the count's growth
  // over the time between the two) to key's chart and redraws it.
  function draw(key, count, what, prev) {
    var svg = document.querySelector('svg[data-chart="' + CSS.escape(key) + '"]');
    if (!svg) return;
    var now = Date.now();
    last[key] = { count: count, at: now };
    if (!prev || now <= prev.at) return;
    var rate = Math.max(0, count - prev.count) / ((now - prev.at) / 1000);
    var pts = history[key] || (history[key] = []);
    pts.push(rate);
    if (pts.length > maxPoints) pts.shift();
    var w = 160, h = 36, top = Math.max.apply(null, pts.concat([0.001]));
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var base = document.createElementNS(svgNS, "line");
    base.setAttribute("class", "base");
    base.setAttribute("x1", "0"); base.setAttribute("x2", String(w));
    base.setAttribute("y1", String(h - 1)); base.setAttribute("y2", String(h - 1));
    svg.appendChild(base);
    var line = document.createElementNS(svgNS, "polyline");
    var step = w / (maxPoints - 1);
    line.setAttribute("points", pts.map(function (v, i) {
      var x = w - (pts.length - 1 - i) * step;
      var y = h - 2 - (v / top) * (h - 12);
      return x.toFixed(1) + "," + y.toFixed(1);
    }).join(" "));
    svg.appendChild(line);
    var lastX = w, lastY = h - 2 - (pts[pts.length - 1] / top) * (h - 12);
    var dot = document.createElementNS(svgNS, "circle");
    dot.setAttribute("cx", String(lastX - 2)); dot.setAttribute("cy", lastY.toFixed(1)); dot.setAttribute("r", "2");
    svg.appendChild(dot);
    var label = document.createElementNS(svgNS, "text");
    label.setAttribute("x", "2"); label.setAttribute("y", "9");
    label.textContent = "max " + top.toFixed(2) + "/s";
    svg.appendChild(label);
    svg.setAttribute("aria-label", what + ": " + rate.toFixed(2) + " per second now, at most " + top.toFixed(2) + " over the last " + pts.length + " refreshes");
  }
  function apply(rep) {
    Object.keys(rep.routes || {}).forEach(function (name) {
      var r = rep.routes[name], k = "routes." + name;
      var prev = last[k] || initial(k, "requests");
      set(k + ".requests", String(r.requests));
      set(k + ".rate", (r.requests / windowSeconds).toFixed(2));
      set(k + ".success_rate", pct(r.success_rate));
      set(k + ".latency", lat(r.latency_ms));
      set(k + ".failures", failures(r.failures));
      draw(k, r.requests, "Requests per second of " + name, prev);
    });
    Object.keys(rep.targets || {}).forEach(function (name) {
      var t = rep.targets[name], k = "targets." + name;
      var prev = last[k] || initial(k, "attempts");
      set(k + ".attempts", String(t.attempts));
      set(k + ".success_rate", pct(t.success_rate));
      set(k + ".latency", lat(t.latency_ms));
      set(k + ".failures", failures(t.failures));
      set(k + ".backlog", String(t.backlog));
      set(k + ".oldest", age(t.oldest_pending_seconds));
      setDead(name, t.dead);
      draw(k, t.attempts, "Attempts per second of " + name, prev);
    });
  }
  var busy = false;
  function tick() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (res.status === 401) { window.location.assign("/ui/login?reason=expired"); return null; }
        if (!res.ok) throw new Error("status " + res.status);
        return res.json();
      })
      .then(function (rep) {
        if (!rep) return;
        apply(rep);
        el.textContent = "Updated " + new Date().toISOString().slice(11, 19) + "Z; refreshes every 5 s.";
        el.dataset.updates = String((Number(el.dataset.updates) || 0) + 1);
      })
      .catch(function (err) { el.textContent = "Refresh failed (" + err.message + "); retrying."; })
      .finally(function () { busy = false; });
  }
  tick();
  setInterval(tick, 5000);

  // The charts over time are drawn by the server: every 10 s the script
  // fetches a fresh copy of the section and swaps it in, keeping the
  // tables that were open.
  var chartsBusy = false;
  function refreshCharts() {
    var cur = document.getElementById("charts");
    if (!cur || chartsBusy || document.hidden) return;
    chartsBusy = true;
    fetch(cur.dataset.chartsUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (res) {
        if (res.redirected && res.url.indexOf("/ui/login") >= 0) { window.location.assign("/ui/login?reason=expired"); return null; }
        if (!res.ok) throw new Error("status " + res.status);
        return res.text();
      })
      .then(function (html) {
        if (html === null) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("charts");
        if (!next) return;
        var open = {};
        cur.querySelectorAll("details[open]").forEach(function (d) { open[d.dataset.table] = true; });
        next.querySelectorAll("details").forEach(function (d) { if (open[d.dataset.table]) d.open = true; });
        next.dataset.updates = String((Number(cur.dataset.updates) || 0) + 1);
        cur.replaceWith(document.importNode(next, true));
      })
      .catch(function (err) {
        var cur2 = document.getElementById("charts");
        if (cur2) cur2.dataset.error = err.message;
      })
      .finally(function () { chartsBusy = false; });
  }
  setInterval(refreshCharts, 10000);
})();

// Copy buttons (the portal's new key): copy the value of the input a
// button names, and say so to screen readers.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var input = document.getElementById(b.dataset.copy);
      var said = document.querySelector('[data-copied-for="' + CSS.escape(b.dataset.copy) + '"]');
      if (!input) return;
      input.select();
      var done = function () { if (said) said.textContent = "Copied."; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          if (said) said.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
        });
      } else {
        if (said) said.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
      }
    });
  });
})();
