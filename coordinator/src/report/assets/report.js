// headscan report: heatmaps, layer profiles and head pages drawn from data.js.
// No dependencies and no network: it works from file://.
(function () {
  "use strict";
  var D = window.HEADSCAN;
  if (!D) { return; }
  var SVGNS = "http://www.w3.org/2000/svg";
  // Viridis (colour-blind safe), 9 stops.
  var VIRIDIS = [[68,1,84],[71,44,122],[59,81,139],[44,113,142],[33,144,141],[39,173,129],[92,200,99],[170,220,50],[253,231,37]];
  function viridis(t) {
    if (!(t >= 0)) { t = 0; }
    if (t > 1) { t = 1; }
    var x = t * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
    var a = VIRIDIS[i], b = VIRIDIS[i + 1];
    return "rgb(" + [0, 1, 2].map(function (k) { return Math.round(a[k] + f * (b[k] - a[k])); }).join(",") + ")";
  }
  function el(name, attrs, text) {
    var e = document.createElement(name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function sv(name, attrs, text) {
    var e = document.createElementNS(SVGNS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(2) + "%"; }
  function sci(v) { return v === null || v === undefined ? "–" : v.toPrecision(3); }
  function fix(v, d) { return v === null || v === undefined ? "–" : v.toFixed(d); }
  function label(l, h) { return (l + 1) + "-" + (h + 1); }
  function headNumbers(f, i) {
    return [
      ["Proportion", pct(f.p[i]), "proportion"],
      ["Arcs", f.arcs[i] === null ? "–" : String(f.arcs[i]), "arcs"],
      ["Hits", f.hits[i] === null ? "–" : String(f.hits[i]), "hits"],
      ["95% CI", pct(f.lo[i]) + " – " + pct(f.hi[i]), "ci"],
      ["p (Bonferroni)", sci(f.pv[i]), "p_value"],
      ["Null p", sci(f.np[i]), "null_p_value"],
      ["Weighted null z", fix(f.wz[i], 2), "null_weighted_z"],
      ["Enrichment", fix(f.en[i], 2) + "×", "enrichment"],
      ["Weighted proportion", pct(f.wp[i]), "weighted_proportion"],
      ["Background rate", pct(f.background), "background"]
    ];
  }
  function numbersTable(f, i) {
    var t = el("table");
    headNumbers(f, i).forEach(function (r) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, r[0]));
      tr.appendChild(el("td", { "data-stat": r[2] }, r[1]));
      t.appendChild(tr);
    });
    return t;
  }

  // ---------- index.html: the explorer ----------
  function explorer() {
    var pick = document.getElementById("feature-pick");
    if (!pick) { return; }
    D.features.forEach(function (f, k) { pick.appendChild(el("option", { value: String(k) }, f.name)); });
    var cur = { f: 0, l: 0, h: 0 };
    var start = location.hash.match(/^#feature=(\d+)$/);
    if (start && D.features[+start[1]]) { cur.f = +start[1]; pick.value = start[1]; }
    pick.addEventListener("change", function () { cur.f = +pick.value; draw(); });
    window.addEventListener("hashchange", function () {
      var m = location.hash.match(/^#feature=(\d+)$/);
      if (m && D.features[+m[1]]) {
        cur.f = +m[1]; pick.value = m[1]; draw();
        document.getElementById("explorer").scrollIntoView();
      }
    });
    document.getElementById("export-svg").addEventListener("click", function () {
      var svg = document.querySelector("#heatmap svg");
      if (!svg) { return; }
      var blob = new Blob(['<?xml version="1.0" encoding="UTF-8"?>\n' + svg.outerHTML], { type: "image/svg+xml" });
      var a = el("a", { href: URL.createObjectURL(blob), download: "heatmap_" + D.features[cur.f].stem + ".svg" });
      document.body.appendChild(a); a.click(); a.remove();
    });
    var CELL = 22, LEFT = 48, TOP = 40;
    var svg, cursor;
    function details() {
      var f = D.features[cur.f], i = cur.l * D.n_heads + cur.h, box = document.getElementById("details");
      box.textContent = "";
      var h = el("h3", { id: "details-head" }, "Head " + label(cur.l, cur.h) + (f.sig[i] === 1 ? " ★" : ""));
      box.appendChild(h);
      box.appendChild(el("p", { "class": "meta" }, f.name + (f.ex[i] === 1 ? " · excluded (too few arcs)" : "")));
      box.appendChild(numbersTable(f, i));
      var a = el("a", { href: "head.html#" + label(cur.l, cur.h) }, "Open head " + label(cur.l, cur.h) + " across all features →");
      box.appendChild(a);
      cursor.setAttribute("x", LEFT + cur.h * CELL);
      cursor.setAttribute("y", TOP + cur.l * CELL);
      cursor.setAttribute("visibility", "visible");
    }
    function open() { location.href = "head.html#" + label(cur.l, cur.h); }
    function draw() {
      var f = D.features[cur.f], L = D.n_layers, H = D.n_heads, box = document.getElementById("heatmap");
      var max = 0;
      f.p.forEach(function (v, i) { if (v !== null && f.ex[i] !== 1 && v > max) { max = v; } });
      if (max <= 0) { max = 1; }
      var W = Math.max(LEFT + H * CELL + 90, 420), Ht = TOP + L * CELL + 30;
      box.textContent = "";
      svg = sv("svg", { xmlns: SVGNS, width: W, height: Ht, viewBox: "0 0 " + W + " " + Ht, tabindex: "0", role: "grid",
        "aria-label": "Heatmap of " + f.name + ": layers as rows, heads as columns. Arrow keys move, Enter opens the head.",
        "font-family": "Helvetica,Arial,sans-serif", "font-size": "11" });
      var defs = sv("defs");
      var pat = sv("pattern", { id: "hatch", width: "6", height: "6", patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
      pat.appendChild(sv("rect", { width: "6", height: "6", fill: "#ddd" }));
      pat.appendChild(sv("line", { x1: "0", y1: "0", x2: "0", y2: "6", stroke: "#888", "stroke-width": "2" }));
      defs.appendChild(pat); svg.appendChild(defs);
      svg.appendChild(sv("rect", { width: W, height: Ht, fill: "#fff" }));
      svg.appendChild(sv("text", { x: LEFT, y: 14, "font-size": "13", "font-weight": "bold" }, f.name + " — proportion per head"));
      svg.appendChild(sv("text", { x: LEFT + H * CELL / 2, y: TOP - 6, "text-anchor": "middle" }, "Head"));
      for (var h = 0; h < H; h++) {
        if (H <= 20 || h % 2 === 0) { svg.appendChild(sv("text", { x: LEFT + h * CELL + CELL / 2, y: TOP + L * CELL + 14, "text-anchor": "middle" }, String(h + 1))); }
      }
      for (var l = 0; l < L; l++) {
        svg.appendChild(sv("text", { x: LEFT - 6, y: TOP + l * CELL + CELL / 2 + 4, "text-anchor": "end" }, String(l + 1)));
        for (h = 0; h < H; h++) {
          var i = l * H + h, v = f.p[i];
          var fill = f.ex[i] === 1 ? "url(#hatch)" : (v === null ? "#eee" : viridis(v / max));
          var r = sv("rect", { "class": "cell", x: LEFT + h * CELL, y: TOP + l * CELL, width: CELL - 1, height: CELL - 1, fill: fill,
            "data-layer": String(l), "data-head": String(h), role: "gridcell", "aria-label": "Head " + label(l, h) + ": " + pct(v) });
          svg.appendChild(r);
          if (f.sig[i] === 1) {
            svg.appendChild(sv("text", { x: LEFT + h * CELL + CELL / 2, y: TOP + l * CELL + CELL / 2 + 4, "text-anchor": "middle",
              fill: v !== null && v / max > 0.6 ? "#000" : "#fff", "pointer-events": "none" }, "★"));
          }
        }
      }
      svg.appendChild(sv("text", { x: 12, y: TOP + L * CELL / 2, transform: "rotate(-90 12 " + (TOP + L * CELL / 2) + ")", "text-anchor": "middle" }, "Layer"));
      // Legend.
      var lx = LEFT + H * CELL + 20;
      for (var s = 0; s < 50; s++) {
        svg.appendChild(sv("rect", { x: lx, y: TOP + (49 - s) * (L * CELL / 50), width: 14, height: L * CELL / 50 + 0.5, fill: viridis(s / 49) }));
      }
      svg.appendChild(sv("text", { x: lx + 18, y: TOP + 8 }, pct(max)));
      svg.appendChild(sv("text", { x: lx + 18, y: TOP + L * CELL }, "0%"));
      cursor = sv("rect", { x: LEFT, y: TOP, width: CELL - 1, height: CELL - 1, fill: "none", stroke: "#e66100", "stroke-width": "3", visibility: "hidden", "pointer-events": "none" });
      svg.appendChild(cursor);
      svg.addEventListener("mouseover", function (e) {
        var t = e.target;
        if (t.getAttribute && t.getAttribute("data-layer") !== null) { cur.l = +t.getAttribute("data-layer"); cur.h = +t.getAttribute("data-head"); details(); }
      });
      svg.addEventListener("click", function (e) {
        var t = e.target;
        if (t.getAttribute && t.getAttribute("data-layer") !== null) { cur.l = +t.getAttribute("data-layer"); cur.h = +t.getAttribute("data-head"); open(); }
      });
      svg.addEventListener("focus", details);
      svg.addEventListener("keydown", function (e) {
        var moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
        if (moves[e.key]) {
          cur.l = Math.max(0, Math.min(L - 1, cur.l + moves[e.key][0]));
          cur.h = Math.max(0, Math.min(H - 1, cur.h + moves[e.key][1]));
          details(); e.preventDefault();
        } else if (e.key === "Enter" || e.key === " ") { open(); e.preventDefault(); }
      });
      box.appendChild(svg);
      var links = document.getElementById("figure-links");
      links.textContent = "";
      if (f.figures) {
        ["heatmap", "top_heads", "layers"].forEach(function (k) {
          links.appendChild(document.createTextNode(" "));
          links.appendChild(el("a", { href: k + "_" + f.stem + ".png" }, k + " PNG"));
          links.appendChild(document.createTextNode(" "));
          links.appendChild(el("a", { href: k + "_" + f.stem + ".svg" }, "SVG"));
        });
      }
      details();
      cursor.setAttribute("visibility", "hidden");
      profile(f);
    }
    draw();
  }

  // The layer profile: mean proportion per layer, background rate, centre of gravity.
  function profile(f) {
    var box = document.getElementById("profile");
    if (!box) { return; }
    var L = f.layer_mean.length, BW = Math.max(8, Math.min(28, Math.floor(760 / Math.max(L, 1)))), LEFT = 56, TOP = 34, PH = 160;
    var max = f.background || 0;
    f.layer_mean.forEach(function (v) { if (v !== null && v > max) { max = v; } });
    if (max <= 0) { max = 1; }
    var W = Math.max(LEFT + L * BW + 20, 480), Ht = TOP + PH + 56;
    var svg = sv("svg", { xmlns: SVGNS, width: W, height: Ht, viewBox: "0 0 " + W + " " + Ht, role: "img", "font-family": "Helvetica,Arial,sans-serif", "font-size": "11",
      "aria-label": "Mean proportion per layer for " + f.name + "; centre of gravity " + fix(f.cog === null ? null : f.cog + 1, 2) });
    svg.appendChild(sv("rect", { width: W, height: Ht, fill: "#fff" }));
    f.layer_mean.forEach(function (v, l) {
      if (v === null) { return; }
      var h = PH * v / max;
      var r = sv("rect", { x: LEFT + l * BW, y: TOP + PH - h, width: BW - 2, height: h, fill: "#3b528b" });
      r.appendChild(sv("title", {}, "Layer " + (l + 1) + ": " + pct(v)));
      svg.appendChild(r);
      if (L <= 40 || l % 2 === 0) { svg.appendChild(sv("text", { x: LEFT + l * BW + BW / 2 - 1, y: TOP + PH + 14, "text-anchor": "middle" }, String(l + 1))); }
    });
    svg.appendChild(sv("line", { x1: LEFT, x2: LEFT, y1: TOP, y2: TOP + PH, stroke: "#444" }));
    svg.appendChild(sv("text", { x: LEFT - 6, y: TOP + 8, "text-anchor": "end" }, pct(max)));
    svg.appendChild(sv("text", { x: LEFT - 6, y: TOP + PH, "text-anchor": "end" }, "0%"));
    if (f.background !== null) {
      var by = TOP + PH - PH * f.background / max;
      svg.appendChild(sv("line", { x1: LEFT, x2: LEFT + L * BW, y1: by, y2: by, stroke: "#e66100", "stroke-dasharray": "5,3", "stroke-width": "1.5" }));
      svg.appendChild(sv("text", { x: LEFT + L * BW + 4, y: by + 4, fill: "#b34d00" }, "background " + pct(f.background)));
    }
    if (f.cog !== null) {
      var cx = LEFT + f.cog * BW + BW / 2 - 1;
      svg.appendChild(sv("line", { x1: cx, x2: cx, y1: TOP - 14, y2: TOP + PH, stroke: "#000", "stroke-width": "2" }));
      svg.appendChild(sv("text", { x: cx + 4, y: TOP - 18 }, "centre of gravity: layer " + fix(f.cog + 1, 2)));
    }
    svg.appendChild(sv("text", { x: LEFT + L * BW / 2, y: TOP + PH + 32, "text-anchor": "middle" }, "Layer (1-based)"));
    box.textContent = "";
    box.appendChild(svg);
  }

  // ---------- head.html: one head across every feature ----------
  function headPage() {
    var box = document.getElementById("head-profile");
    if (!box) { return; }
    var pick = document.getElementById("head-pick");
    for (var l = 0; l < D.n_layers; l++) {
      for (var h = 0; h < D.n_heads; h++) { pick.appendChild(el("option", { value: label(l, h) }, label(l, h))); }
    }
    pick.addEventListener("change", function () { location.hash = pick.value; });
    function show() {
      var m = location.hash.match(/^#(\d+)-(\d+)$/), l = 0, h = 0;
      if (m && +m[1] >= 1 && +m[1] <= D.n_layers && +m[2] >= 1 && +m[2] <= D.n_heads) { l = +m[1] - 1; h = +m[2] - 1; }
      pick.value = label(l, h);
      var i = l * D.n_heads + h;
      document.getElementById("head-title").textContent = "Head " + label(l, h);
      document.title = "Head " + label(l, h) + " · " + D.title;
      var max = 0;
      D.features.forEach(function (f) {
        [f.p[i], f.hi[i], f.background].forEach(function (v) { if (v !== null && v > max) { max = v; } });
      });
      if (max <= 0) { max = 1; }
      var t = el("table", { id: "head-table" });
      var head = el("tr");
      ["Feature", "Proportion vs background", "Proportion", "95% CI", "p", "Null p", "Weighted null z", "Rank"].forEach(function (c) { head.appendChild(el("th", {}, c)); });
      t.appendChild(head);
      D.features.forEach(function (f, k) {
        var tr = el("tr", { "class": "hrow" + (f.ex[i] === 1 ? " excluded" : ""), "data-feature": f.name });
        var name = el("td");
        name.appendChild(el("a", { href: "index.html#feature=" + k }, f.name + (f.sig[i] === 1 ? " ★" : "")));
        tr.appendChild(name);
        var bar = el("span", { "class": "bar", role: "img", "aria-label": pct(f.p[i]) + " vs background " + pct(f.background) });
        var fill = el("span", { "class": "fill" });
        fill.style.width = (f.p[i] === null ? 0 : 100 * f.p[i] / max) + "%";
        bar.appendChild(fill);
        if (f.background !== null) { var bg = el("span", { "class": "bg" }); bg.style.left = (100 * f.background / max) + "%"; bar.appendChild(bg); }
        var bc = el("td"); bc.appendChild(bar); tr.appendChild(bc);
        tr.appendChild(el("td", { "data-stat": "proportion" }, pct(f.p[i])));
        tr.appendChild(el("td", { "data-stat": "ci" }, pct(f.lo[i]) + " – " + pct(f.hi[i])));
        tr.appendChild(el("td", { "data-stat": "p_value" }, sci(f.pv[i])));
        tr.appendChild(el("td", { "data-stat": "null_p_value" }, sci(f.np[i])));
        tr.appendChild(el("td", { "data-stat": "null_weighted_z" }, fix(f.wz[i], 2)));
        var rank = 1, mine = f.p[i];
        if (mine === null || f.ex[i] === 1) { rank = "–"; } else {
          f.p.forEach(function (v, j) { if (j !== i && v !== null && f.ex[j] !== 1 && v > mine) { rank++; } });
          rank = rank + " of " + f.included;
        }
        tr.appendChild(el("td", {}, String(rank)));
        t.appendChild(tr);
      });
      box.textContent = "";
      box.appendChild(t);
      headSequences(l, h);
    }
    window.addEventListener("hashchange", show);
    show();
  }


  // ---------- head.html: the visualised sequences where this head attends most ----------
  function headSequences(l, h) {
    var box = document.getElementById("head-sequences");
    if (!box) { return; }
    if (!D.visualised) {
      box.textContent = "";
      box.appendChild(el("p", { "class": "meta" }, "No sequences were visualised in this report: " +
        "headscan report --results <job output> --out <dir> --visualize <id>,<id> adds a page per protein " +
        "with this head's attention on it."));
      return;
    }
    var key = label(l, h);
    var rows = D.visualised.map(function (s) { return { s: s, w: s.peak[key] }; })
      .filter(function (r) { return r.w !== undefined; })
      .sort(function (a, b) { return b.w - a.w || (a.s.id < b.s.id ? -1 : 1); });
    box.textContent = "";
    box.appendChild(el("h2", {}, "Visualised sequences"));
    if (rows.length === 0) { box.appendChild(el("p", { "class": "meta" }, "This head has no attention weight above the floor in the visualised sequences.")); return; }
    var ul = el("ul");
    rows.forEach(function (r) {
      var li = el("li");
      li.appendChild(el("a", { href: "sequences/" + r.s.stem + ".html#" + key }, r.s.id));
      li.appendChild(document.createTextNode(" — strongest arc " + r.w.toFixed(2)));
      ul.appendChild(li);
    });
    box.appendChild(ul);
  }

  // ---------- sequences/<id>.html: arcs and the Cα trace ----------
  function decodeArcs(b64) {
    var bin = atob(b64 || ""), out = [];
    for (var k = 0; k + 4 < bin.length; k += 5) {
      out.push([bin.charCodeAt(k) | (bin.charCodeAt(k + 1) << 8), bin.charCodeAt(k + 2) | (bin.charCodeAt(k + 3) << 8), bin.charCodeAt(k + 4) / 255]);
    }
    return out;
  }
  function sequencePage() {
    var S = window.HEADSCAN_SEQ, pick = document.getElementById("seq-head");
    if (!S || !pick) { return; }
    var n = S.sequence.length, keys = Object.keys(S.heads);
    keys.sort(function (a, b) { var x = a.split("-"), y = b.split("-"); return (x[0] - y[0]) || (x[1] - y[1]); });
    keys.forEach(function (k) { pick.appendChild(el("option", { value: k }, k)); });
    var binding = {}, ptm = {};
    S.binding.forEach(function (i) { binding[i] = true; });
    S.ptm.forEach(function (i) { ptm[i] = true; });
    var ca = [], hasCa = false;
    for (var i = 0; i < n; i++) {
      var x = S.ca[3 * i], y = S.ca[3 * i + 1], z = S.ca[3 * i + 2];
      if (x === undefined || x === null || y === null || z === null) { ca.push(null); } else { ca.push([x, y, z]); hasCa = true; }
    }
    function contact(a, b) {
      if (!ca[a] || !ca[b] || Math.abs(a - b) < 6) { return false; }
      var d = 0; for (var k = 0; k < 3; k++) { d += (ca[a][k] - ca[b][k]) * (ca[a][k] - ca[b][k]); }
      return d < 64;
    }
    function residueColour(i) { return binding[i] ? "#e66100" : (ptm[i] ? "#5e3c99" : "#444"); }
    var arcs = [];
    function drawArcs() {
      var box = document.getElementById("seq-arcs"), STEP = 12, LEFT = 10, BASE = 230, W = LEFT * 2 + n * STEP;
      var svg = sv("svg", { xmlns: SVGNS, width: W, height: BASE + 40, viewBox: "0 0 " + W + " " + (BASE + 40), "font-family": "monospace", "font-size": "10" });
      svg.appendChild(sv("rect", { width: W, height: BASE + 40, fill: "#fff" }));
      arcs.forEach(function (a) {
        var x1 = LEFT + a[0] * STEP + STEP / 2, x2 = LEFT + a[1] * STEP + STEP / 2, r = Math.abs(x2 - x1) / 2;
        var hgt = Math.min(BASE - 10, r);
        var d = "M" + x1 + "," + (BASE - 4) + " C" + x1 + "," + (BASE - 4 - hgt * 1.33) + " " + x2 + "," + (BASE - 4 - hgt * 1.33) + " " + x2 + "," + (BASE - 4);
        var p = sv("path", { d: d, fill: "none", stroke: contact(a[0], a[1]) ? "#1f78b4" : "#888", "stroke-width": (0.5 + 4 * a[2]).toFixed(2), "stroke-opacity": (0.35 + 0.65 * a[2]).toFixed(2) });
        p.appendChild(sv("title", {}, (a[0] + 1) + S.sequence[a[0]] + " → " + (a[1] + 1) + S.sequence[a[1]] + ": " + a[2].toFixed(2)));
        svg.appendChild(p);
      });
      for (var i = 0; i < n; i++) {
        svg.appendChild(sv("text", { x: LEFT + i * STEP + STEP / 2, y: BASE + 10, "text-anchor": "middle", fill: residueColour(i), "font-weight": binding[i] || ptm[i] ? "bold" : "normal" }, S.sequence[i]));
        if ((i + 1) % 10 === 0) { svg.appendChild(sv("text", { x: LEFT + i * STEP + STEP / 2, y: BASE + 26, "text-anchor": "middle", fill: "#777" }, String(i + 1))); }
      }
      box.textContent = "";
      box.appendChild(svg);
    }
    // 3D: the Cα trace in WebGL (OGL, vendored), or a flat 2D drawing when WebGL is unavailable.
    var canvas = document.getElementById("seq-3d"), note = document.getElementById("seq-3d-note");
    var HIDE = 0.1, TRACE = "#a0a0a0", RESIDUE = "#555555", BINDING = "#e66100", PTM = "#5e3c99";
    var CONTACT = "#1f78b4", DISTANT = "#009e73";
    var centre = [0, 0, 0], radius = 1;
    if (hasCa) {
      var m = 0; ca.forEach(function (p) { if (p) { centre[0] += p[0]; centre[1] += p[1]; centre[2] += p[2]; m++; } });
      centre = centre.map(function (v) { return v / m; });
      ca.forEach(function (p) { if (p) { var d = Math.hypot(p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]); if (d > radius) { radius = d; } } });
    }
    function shown(list) { return list.filter(function (a) { return a[2] >= HIDE && a[0] !== a[1] && ca[a[0]] && ca[a[1]]; }); }
    var LEGEND = "Lines: the head's attention (weights below " + HIDE + " hidden), width and opacity ∝ weight; " +
      "blue between residues in contact (Cα < 8 Å), green otherwise. Large spheres: orange binding site, purple PTM.";
    function webgl() {
      var O = window.OGL;
      if (!O) { return null; }
      // Probe on a scratch canvas first, so a browser without WebGL falls back without an error.
      var probe = document.createElement("canvas");
      if (!(probe.getContext("webgl2") || probe.getContext("webgl"))) { return null; }
      var W = canvas.width, H = canvas.height;
      var renderer = new O.Renderer({ canvas: canvas, width: W, height: H, dpr: window.devicePixelRatio || 1,
        antialias: true, preserveDrawingBuffer: true });
      var gl = renderer.gl;
      if (!gl) { return null; }
      gl.clearColor(1, 1, 1, 1);
      var distance = 1.1 * radius / Math.tan(Math.PI * 15 / 180), zoom = 1;
      var camera = new O.Camera(gl, { fov: 30, aspect: W / H, near: 0.1, far: distance * 30 });
      // Lambert shading with a fog-like depth cue: the far side of the chain fades towards white.
      var vertex = "attribute vec3 position; attribute vec3 normal;" +
        "uniform mat4 modelViewMatrix; uniform mat4 projectionMatrix; uniform mat3 normalMatrix;" +
        "varying vec3 vNormal; varying float vDepth;" +
        "void main() { vNormal = normalize(normalMatrix * normal); vec4 mv = modelViewMatrix * vec4(position, 1.0);" +
        " vDepth = -mv.z; gl_Position = projectionMatrix * mv; }";
      var fragment = "precision highp float; uniform vec3 uColor; uniform float uAlpha; uniform vec2 uFog;" +
        "varying vec3 vNormal; varying float vDepth;" +
        "void main() { vec3 n = normalize(vNormal); float d = 0.45 + 0.6 * max(dot(n, normalize(vec3(0.4, 0.6, 1.0))), 0.0);" +
        " float fog = 0.55 * clamp((vDepth - uFog.x) / (uFog.y - uFog.x), 0.0, 1.0);" +
        " gl_FragColor = vec4(mix(min(uColor * d, vec3(1.0)), vec3(1.0), fog), uAlpha); }";
      var fog = [0, 1];
      function program(transparent) {
        return new O.Program(gl, { vertex: vertex, fragment: fragment, transparent: transparent, depthWrite: !transparent,
          cullFace: null, uniforms: { uColor: { value: [0, 0, 0] }, uAlpha: { value: 1 }, uFog: { value: fog } } });
      }
      var solid = program(false), glass = program(true);
      function rgb(hex) { return [1, 3, 5].map(function (k) { return parseInt(hex.slice(k, k + 2), 16) / 255; }); }
      // Each mesh sets its own colour and opacity on the shared program just before it is drawn.
      function paint(mesh, colour, alpha) {
        var c = rgb(colour);
        mesh.onBeforeRender(function () { mesh.program.uniforms.uColor.value = c; mesh.program.uniforms.uAlpha.value = alpha; });
      }
      var root = new O.Transform(), links = new O.Transform();
      links.setParent(root);
      var ball = new O.Sphere(gl, { radius: 1, widthSegments: 14, heightSegments: 10 });
      var rod = new O.Cylinder(gl, { radiusTop: 1, radiusBottom: 1, height: 1, radialSegments: 10 });
      function at(i) { return new O.Vec3(ca[i][0] - centre[0], ca[i][1] - centre[1], ca[i][2] - centre[2]); }
      // A rod from p to q: the unit cylinder (along y) scaled, turned and moved.
      function stick(p, q, r, prog, colour, alpha, parent) {
        var d = new O.Vec3().sub(q, p), len = d.len();
        if (len === 0) { return; }
        d.scale(1 / len);
        var m = new O.Mesh(gl, { geometry: rod, program: prog });
        m.position.copy(p).add(q).scale(0.5);
        // Half-way quaternion turning y onto d: (y × d, 1 + y·d), normalised.
        if (d.y < -0.999999) { m.quaternion.set(1, 0, 0, 0); } else {
          var w = 1 + d.y, s = Math.hypot(d.z, d.x, w);
          m.quaternion.set(d.z / s, 0, -d.x / s, w / s);
        }
        m.scale.set(r, len, r);
        paint(m, colour, alpha);
        m.setParent(parent);
      }
      // The chain: Cα spheres joined by rods, broken where coordinates are missing;
      // binding sites and PTMs as larger coloured spheres.
      for (var i = 0; i < n; i++) {
        if (!ca[i]) { continue; }
        if (i > 0 && ca[i - 1]) { stick(at(i - 1), at(i), 0.3, solid, TRACE, 1, root); }
        var big = binding[i] || ptm[i], s = big ? 1.1 : 0.55;
        var b = new O.Mesh(gl, { geometry: ball, program: solid });
        b.position.copy(at(i));
        b.scale.set(s, s, s);
        paint(b, binding[i] ? BINDING : (ptm[i] ? PTM : RESIDUE), 1);
        b.setParent(root);
      }
      // Attention: rods between residues, radius and opacity ∝ weight.
      function setArcs(list) {
        links.children.slice().forEach(function (c) { links.removeChild(c); });
        shown(list).forEach(function (a) {
          stick(at(a[0]), at(a[1]), 0.06 + 0.8 * a[2], glass, contact(a[0], a[1]) ? CONTACT : DISTANT, 0.3 + 0.65 * a[2], links);
        });
      }
      root.quaternion.rotateY(0.6);
      root.quaternion.multiply(new O.Quat().rotateX(0.3), root.quaternion);
      function render() {
        var z = distance / zoom;
        camera.position.set(0, 0, z);
        camera.lookAt([0, 0, 0]);
        fog[0] = z - radius; fog[1] = z + radius;
        renderer.render({ scene: root, camera: camera });
      }
      function rotate(dx, dy) {
        root.quaternion.multiply(new O.Quat().rotateY(dx), root.quaternion);
        root.quaternion.multiply(new O.Quat().rotateX(dy), root.quaternion);
        render();
      }
      function zoomBy(f) { zoom = Math.max(0.2, Math.min(20, zoom * f)); render(); }
      return { kind: "webgl", draw: function (list) { setArcs(list); render(); }, rotate: rotate, zoom: zoomBy };
    }
    function flat() {
      // Fallback: orthographic projection of the same view on a 2D canvas.
      var ctx = canvas.getContext("2d"), yaw = 0.6, pitch = 0.3, zoom = 1, list = [];
      function project(p) {
        var x = p[0] - centre[0], y = p[1] - centre[1], z = p[2] - centre[2];
        var cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
        var x1 = cy * x + sy * z, z1 = -sy * x + cy * z;
        var y1 = cp * y - sp * z1, z2 = sp * y + cp * z1;
        var s = zoom * Math.min(canvas.width, canvas.height) * 0.45 / radius;
        return [canvas.width / 2 + s * x1, canvas.height / 2 - s * y1, z2];
      }
      function rgba(hex, a) { return "rgba(" + [1, 3, 5].map(function (k) { return parseInt(hex.slice(k, k + 2), 16); }).join(",") + "," + a.toFixed(2) + ")"; }
      function render() {
        ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
        var P = ca.map(function (p) { return p ? project(p) : null; });
        // Depth cue: the far side of the chain is drawn paler (z grows towards the viewer).
        function shade(z) { var t = Math.max(0, Math.min(1, 0.5 - z / (2 * radius))); return Math.round(120 + 110 * t); }
        ctx.lineWidth = 2.5;
        for (var i = 1; i < P.length; i++) {
          var a = P[i - 1], b = P[i];
          if (!a || !b) { continue; }
          var g = shade((a[2] + b[2]) / 2);
          ctx.strokeStyle = "rgb(" + g + "," + g + "," + g + ")";
          ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
        }
        shown(list).forEach(function (a) {
          var p = P[a[0]], q = P[a[1]];
          ctx.strokeStyle = rgba(contact(a[0], a[1]) ? CONTACT : DISTANT, 0.3 + 0.65 * a[2]);
          ctx.lineWidth = 0.5 + 6 * a[2];
          ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); ctx.stroke();
        });
        var order = [];
        P.forEach(function (p, i) { if (p) { order.push(i); } });
        order.sort(function (a, b) { return P[a][2] - P[b][2]; });
        order.forEach(function (i) {
          var p = P[i], g = shade(p[2]);
          ctx.fillStyle = binding[i] ? BINDING : (ptm[i] ? PTM : "rgb(" + (g - 60) + "," + (g - 60) + "," + (g - 60) + ")");
          var r = binding[i] || ptm[i] ? 4.5 : 2.5;
          ctx.beginPath(); ctx.arc(p[0], p[1], r, 0, 2 * Math.PI); ctx.fill();
        });
      }
      return {
        kind: "2d", draw: function (l) { list = l; render(); },
        rotate: function (dx, dy) { yaw += dx; pitch += dy; render(); },
        zoom: function (f) { zoom = Math.max(0.2, Math.min(20, zoom * f)); render(); },
      };
    }
    var view = null;
    if (!hasCa) {
      note.textContent = "This record has no coordinates: no 3D view.";
      canvas.style.display = "none";
    } else {
      view = webgl();
      if (view) {
        note.textContent = "Cα trace (WebGL): drag or arrow keys to rotate, wheel or +/− to zoom. " + LEGEND;
      } else {
        // A canvas whose WebGL context failed may refuse a 2D one: draw on a fresh copy.
        var fresh = canvas.cloneNode(false);
        canvas.parentNode.replaceChild(fresh, canvas);
        canvas = fresh;
        view = flat();
        note.textContent = "WebGL is unavailable in this browser: a flat drawing of the Cα trace instead " +
          "(drag or arrow keys to rotate, wheel or +/− to zoom). " + LEGEND;
      }
      canvas.setAttribute("data-renderer", view.kind);
      var drag = null;
      canvas.addEventListener("mousedown", function (e) { drag = [e.clientX, e.clientY]; canvas.focus(); e.preventDefault(); });
      window.addEventListener("mouseup", function () { drag = null; });
      window.addEventListener("mousemove", function (e) {
        if (!drag) { return; }
        view.rotate((e.clientX - drag[0]) * 0.01, (e.clientY - drag[1]) * 0.01); drag = [e.clientX, e.clientY];
      });
      canvas.addEventListener("wheel", function (e) { view.zoom(e.deltaY < 0 ? 1.1 : 1 / 1.1); e.preventDefault(); }, { passive: false });
      canvas.addEventListener("keydown", function (e) {
        var k = e.key;
        if (k === "ArrowLeft") { view.rotate(-0.1, 0); } else if (k === "ArrowRight") { view.rotate(0.1, 0); } else if (k === "ArrowUp") { view.rotate(0, -0.1); } else if (k === "ArrowDown") { view.rotate(0, 0.1); } else if (k === "+" || k === "=") { view.zoom(1.1); } else if (k === "-") { view.zoom(1 / 1.1); } else { return; }
        e.preventDefault();
      });
    }
    function show() {
      var key = location.hash.slice(1);
      if (!S.heads.hasOwnProperty(key)) { key = keys[0]; }
      if (key === undefined) { return; }
      pick.value = key;
      arcs = decodeArcs(S.heads[key]);
      drawArcs(); if (view) { view.draw(arcs); }
    }
    pick.addEventListener("change", function () { location.hash = pick.value; });
    window.addEventListener("hashchange", show);
    show();
  }

  explorer();
  headPage();
  sequencePage();
})();
