// segx market board: plain JavaScript over the REST API (/v1), no build step. It polls every
// two seconds and follows running blocks' event streams; every value from the server is put in
// the page as text, never as HTML.
"use strict";

const POLL_MS = 2000;
const state = { token: sessionStorage.getItem("segx-token") || "", me: null, skewMs: 0,
                lots: [], timer: null, drafts: {}, panels: {}, evidence: {}, refreshing: false };

function $(id) { return document.getElementById(id); }

// Builds an element: el("td", {class: "num"}, "12", child, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function say(text, kind) {
  const s = $("status");
  s.textContent = text;
  s.className = "status" + (kind ? " " + kind : "");
}

async function api(method, path, body) {
  const headers = { "Authorization": "Bearer " + state.token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers,
                                  body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const err = new Error(data && data.detail ? data.detail : "HTTP " + res.status);
    err.status = res.status;
    throw err;
  }
  return data;
}

// "12 ratings, 92% positive, Wilson 0.78" as a coloured badge.
function badge(rep, label) {
  if (!rep || rep.count === 0)
    return el("span", { class: "badge none", "data-testid": "reputation" },
              (label ? label + ": " : "") + "no ratings yet");
  const pct = Math.round(rep.percent_positive);
  // Colour only once there is evidence: a few ratings say little either way.
  const kind = rep.count < 5 ? "" : rep.wilson_lower >= 0.6 ? "good" :
               rep.wilson_lower < 0.3 ? "poor" : "";
  const text = (label ? label + ": " : "") + "★ " + pct + "% positive of " + rep.count +
               " · Wilson " + rep.wilson_lower.toFixed(2);
  return el("span", { class: "badge " + kind, "data-testid": "reputation",
                      title: rep.positive + " positive of " + rep.count +
                             " ratings; Wilson lower bound " + rep.wilson_lower.toFixed(3) },
            text);
}

function countdownText(closesAt) {
  let ms = Date.parse(closesAt) - (Date.now() + state.skewMs);
  if (ms <= 0) return "closing…";
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s % 60);
}

function tickCountdowns() {
  for (const c of document.querySelectorAll(".countdown")) {
    c.textContent = countdownText(c.dataset.closes);
    const left = Date.parse(c.dataset.closes) - (Date.now() + state.skewMs);
    c.classList.toggle("soon", left < 60000);
  }
}

function canBid() { return state.me && (state.me.role === "recipient" || state.me.role === "device"); }

function bidForm(lot) {
  const id = lot.id;
  const draft = state.drafts[id] || {};
  const price = el("input", { id: "price-" + id, name: "price", type: "number", min: 0, step: 1,
                              required: true, inputmode: "numeric", value: draft.price });
  const members = el("input", { id: "members-" + id, name: "members", type: "text", required: true,
                                placeholder: "ip:10.0.0.0/8, device:phone-1", value: draft.members,
                                spellcheck: "false" });
  const token = el("input", { id: "pay-" + id, name: "payment_token", type: "text",
                              value: draft.payment_token || "tok_visa", spellcheck: "false" });
  for (const input of [price, members, token])
    input.addEventListener("input", () => {
      state.drafts[id] = { price: price.value, members: members.value, payment_token: token.value };
    });
  const form = el("form", { class: "bid-form", "data-lot": id, "aria-label": "Bid on lot " + id },
    el("label", { for: "price-" + id }, "Price per block (" + lot.currency + " minor units)"), price,
    el("label", { for: "members-" + id }, "Members (comma-separated)"), members,
    el("label", { for: "pay-" + id }, "Payment token"), token,
    el("button", { type: "submit" }, "Place bid"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { price: Number(price.value),
                   members: members.value.split(",").map((s) => s.trim()).filter((s) => s) };
    if (token.value.trim()) body.payment_token = token.value.trim();
    try {
      const bid = await api("POST", "/v1/lots/" + id + "/bids", body);
      delete state.drafts[id];
      say("Bid " + bid.id + " on lot " + id + " accepted at " + bid.price + ".", "ok");
      await refresh();
    } catch (e) {
      say("Bid refused: " + e.message, "error");
    }
  });
  return form;
}

function lotInfo(lot) {
  return el("div", { class: "info" },
    el("h3", { id: "lot-" + lot.id }, "Lot " + lot.id + " · " + lot.profile),
    el("div", {}, "Provider ", el("strong", {}, lot.provider), " ", badge(lot.provider_reputation)),
    el("dl", {},
      el("dt", {}, "Closes in"),
      el("dd", {}, el("span", { class: "countdown", "data-closes": lot.closes_at,
                                title: lot.closes_at }, countdownText(lot.closes_at))),
      el("dt", {}, "Block"), el("dd", {}, lot.quantity + " × " + lot.duration + " from " +
                                new Date(lot.start_at).toLocaleString()),
      el("dt", {}, "Rate"), el("dd", {}, rateText(lot.min_rate, lot.max_rate)),
      el("dt", {}, "Format"), el("dd", {}, lot.format.replace("_", " ")),
      el("dt", {}, "Bids"), el("dd", {}, String(lot.bid_count) +
        (lot.format === "ascending" ? " (leading " + lot.leading_price + ")" : " (sealed)"))));
}

function renderLots() {
  const box = $("lots");
  const open = state.lots.filter((l) => l.state === "open");
  // Cards are updated in place and their bid forms kept, so a refresh never interrupts typing.
  const keep = new Set(open.map((l) => String(l.id)));
  for (const card of box.querySelectorAll("article.lot"))
    if (!keep.has(card.dataset.lot)) card.remove();
  const empty = box.querySelector("p.help");
  if (empty) empty.remove();
  for (const lot of open) {
    let card = box.querySelector('article.lot[data-lot="' + lot.id + '"]');
    if (!card) {
      card = el("article", { class: "lot", "data-lot": lot.id, "aria-labelledby": "lot-" + lot.id },
                lotInfo(lot), canBid() ? bidForm(lot) : null);
      box.append(card);
    } else {
      card.querySelector(".info").replaceWith(lotInfo(lot));
    }
  }
  if (!open.length) box.append(el("p", { class: "help" }, "No lot is open right now."));
  tickCountdowns();

  const past = state.lots.filter((l) => l.state !== "open").reverse();
  $("past-lots").tBodies[0].replaceChildren(...past.map((l) => el("tr", {},
    el("td", {}, l.id), el("td", {}, l.provider), el("td", {}, l.profile),
    el("td", {}, new Date(l.closes_at).toLocaleString()), el("td", {}, l.outcome.replaceAll("_", " ")),
    el("td", { class: "num" }, l.clearing_price), el("td", {}, badge(l.provider_reputation)))));
}

function rateText(min, max) {
  const f = (b) => b >= 1e9 ? b / 1e9 + " Gbit/s" : b >= 1e6 ? b / 1e6 + " Mbit/s" :
                   b >= 1e3 ? b / 1e3 + " kbit/s" : b + " bit/s";
  if (!min && !max) return "best effort";
  return (min ? "at least " + f(min) : "") + (min && max ? ", " : "") + (max ? "at most " + f(max) : "");
}

function renderMyBids(bids) {
  $("my-bids").tBodies[0].replaceChildren(...bids.map((b) => el("tr", { "data-bid": b.id },
    el("td", {}, b.id + (b.group ? " (group)" : "")), el("td", {}, b.lot),
    el("td", { class: "num" }, b.price), el("td", {}, b.members === null ? "(not shown)" : b.members.join(", ")),
    el("td", { class: b.status }, b.status), el("td", {}, b.lease === null ? "" : "lease " + b.lease))));
  if (!bids.length)
    $("my-bids").tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "help" }, "No bids yet.")));
}

async function renderProviderBids() {
  const mine = state.lots.filter((l) => l.provider === state.me.principal || state.me.role === "admin");
  const rows = [];
  for (const lot of mine.slice(-20)) {
    const { bids } = await api("GET", "/v1/lots/" + lot.id + "/bids");
    for (const b of bids)
      rows.push(el("tr", {}, el("td", {}, lot.id), el("td", {}, b.id), el("td", {}, b.bidder),
        el("td", {}, badge(b.bidder_reputation)), el("td", { class: "num" }, b.effective_price),
        el("td", { class: b.status }, b.status)));
  }
  $("provider-bids").tBodies[0].replaceChildren(...rows);
}

// ---- blocks: a chart of what a running block delivers, against what its lease promised ----

const SVG_NS = "http://www.w3.org/2000/svg";
// Chromium opens at most 6 HTTP/1.1 connections per host and an open stream holds one: past
// this many running blocks, a panel polls the series instead of following the stream.
const MAX_STREAMS = 2;
const MAX_POINTS = 604800;  // a week at 1 s: the most pipeline.metering.series_points keeps
const MAX_DRAWN = 1200;     // steps drawn: a longer series is drawn as averages over buckets

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {}))
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of children)
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// 1234567 -> "1.23 Mbit/s": three significant digits.
function fmtRate(bps) {
  if (bps === null || bps === undefined || !isFinite(bps)) return "–";
  const units = [[1e9, "Gbit/s"], [1e6, "Mbit/s"], [1e3, "kbit/s"]];
  for (const [div, unit] of units)
    if (Math.abs(bps) >= div) return Number((bps / div).toPrecision(3)) + " " + unit;
  return Math.round(bps) + " bit/s";
}

// 0.9667 -> "96.6%": rounded down, so a block one second short never reads "100%".
function fmtRatio(r) {
  const v = Math.floor(r * 1000) / 10;
  return (Number.isInteger(v) ? String(v) : v.toFixed(1)) + "%";
}

function complianceText(c) {
  if (!c || !c.seconds) return "Nothing measured yet.";
  return fmtRatio(c.compliant_ratio) + " compliant: " + c.owed_seconds + " s owed, " +
         c.shortfall_seconds + " s short, " + c.at_max_seconds + " s at max";
}

// The summary as an element the page and the test read alike.
function complianceEl(c) {
  return el("p", { class: "compliance", "data-seconds": c ? c.seconds : 0,
                   "data-owed": c ? c.owed_seconds : 0, "data-short": c ? c.shortfall_seconds : 0,
                   "data-at-max": c ? c.at_max_seconds : 0,
                   "data-ratio": c ? c.compliant_ratio : 1,
                   title: "Of " + (c ? c.seconds : 0) + " seconds measured: owed = the members " +
                          "offered at least the minimum; short = of those, less than the minimum " +
                          "was delivered; at max = traffic above the maximum was dropped (red)." },
            complianceText(c));
}

function seconds(n) { return n + (n === 1 ? " second" : " seconds"); }

function timeText(t) { return new Date(t * 1000).toLocaleTimeString(); }

// Draws `points` (the series' objects, oldest first) into the <svg> `chart`, replacing what it
// held. The attributes data-points, data-last-seq and data-last-delivered-bps say what is drawn.
function drawChart(chart, points, minRate, maxRate, label) {
  const W = 640, H = 220, L = 64, R = 10, T = 12, B = 26;
  chart.replaceChildren();
  const last = points.length ? points[points.length - 1] : null;
  const reds = points.filter((p) => p.bytes && p.bytes.red > 0);
  chart.setAttribute("data-points", String(points.length));
  chart.setAttribute("data-red-points", String(reds.length));
  chart.setAttribute("data-last-seq", last ? String(last.seq) : "");
  chart.setAttribute("data-last-delivered-bps", last ? String(last.delivered_bps) : "");
  const promise = rateText(minRate, maxRate);
  chart.setAttribute("aria-label", !last
    ? label + ": no second measured yet; promised " + promise + "."
    : label + " over " + seconds(points.length) + ", last " + fmtRate(last.delivered_bps) +
      "; promised " + promise + "; " + seconds(reds.length) +
      " with traffic dropped above the maximum.");

  let high = Math.max(minRate || 0, maxRate || 0, 1000);
  const steps = buckets(points);
  for (const b of steps) high = Math.max(high, b.bps);
  // Gridlines at round rates (1, 2, 2.5 or 5 times a power of ten), with room above the top.
  const raw = high * 1.1 / 4, pow = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = pow * ([1, 2, 2.5, 5, 10].find((m) => m * pow >= raw) || 10);
  const top = Math.ceil(high * 1.1 / step) * step;
  const t1 = last ? last.t : 0;
  const t0 = points.length ? points[0].t - (points[0].dt || 1) : -1;
  const span = Math.max(t1 - t0, 1);
  const x = (t) => L + (W - L - R) * (t - t0) / span;
  const y = (v) => T + (H - T - B) * (1 - v / top);

  chart.append(svg("rect", { class: "plot", x: L, y: T, width: W - L - R, height: H - T - B }));
  for (let v = 0; v <= top + step / 2; v += step) {
    chart.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    chart.append(svg("text", { class: "axis", x: L - 4, y: y(v) + 4, "text-anchor": "end" },
                     fmtRate(v)));
  }
  if (last) {
    chart.append(svg("text", { class: "axis", x: L, y: H - 8 }, timeText(t0)));
    chart.append(svg("text", { class: "axis", x: W - R, y: H - 8, "text-anchor": "end" },
                     timeText(t1)));
  }
  for (const [rate, cls, name] of [[minRate, "min", "min"], [maxRate, "max", "max"]]) {
    if (!rate) continue;
    chart.append(svg("line", { class: "limit " + cls, x1: L, x2: W - R, y1: y(rate), y2: y(rate) }));
    chart.append(svg("text", { class: "limit-label " + cls, x: W - R - 4, y: y(rate) - 4,
                               "text-anchor": "end" }, name + " " + fmtRate(rate)));
  }
  if (steps.length) {
    // Each point is a step over the second it covers, so a lone point still shows.
    let d = "";
    for (const b of steps) {
      const yy = y(b.bps).toFixed(1);
      d += (d ? " L" : "M") + x(b.t0).toFixed(1) + " " + yy + " L" + x(b.t1).toFixed(1) + " " + yy;
    }
    chart.append(svg("path", { class: "delivered", d }));
  }
  for (const b of steps.filter((b) => b.redSeconds))
    chart.append(svg("circle", { class: "red-drop", cx: x((b.t0 + b.t1) / 2).toFixed(1),
                                 cy: y(b.bps).toFixed(1), r: 3.5 },
                     svg("title", {}, timeText(b.t1) + ": " + b.red + " bytes dropped above the maximum" +
                                      (b.n > 1 ? " in " + seconds(b.redSeconds) + " of " + b.n : ""))));
}

// The steps to draw: one per point, or per bucket of points (their delivered rate averaged
// over their time, their red bytes summed) once there are more than MAX_DRAWN.
function buckets(points) {
  const per = Math.max(1, Math.ceil(points.length / MAX_DRAWN));
  const out = [];
  for (let i = 0; i < points.length; i += per) {
    const group = points.slice(i, i + per);
    let bits = 0, time = 0, red = 0, redSeconds = 0;
    for (const p of group) {
      const dt = p.dt || 1;
      bits += (p.delivered_bps || 0) * dt;
      time += dt;
      const r = p.bytes ? p.bytes.red : 0;
      red += r;
      if (r > 0) redSeconds++;
    }
    const first = group[0], last = group[group.length - 1];
    out.push({ t0: first.t - (first.dt || 1), t1: last.t, bps: per === 1 ? (first.delivered_bps || 0) : bits / time,
               red, redSeconds, n: group.length });
  }
  return out;
}

// The chart and, for screen readers and keyboards, the last seconds as a table.
function chartFigure(id, label) {
  const chart = svg("svg", { id, class: "chart", role: "img", viewBox: "0 0 640 220",
                             preserveAspectRatio: "xMidYMid meet", "data-points": 0 });
  const legend = el("figcaption", { class: "legend" },
    el("span", { class: "key delivered" }, "delivered"), " ",
    el("span", { class: "key min" }, "minimum"), " ",
    el("span", { class: "key max" }, "maximum"), " ",
    el("span", { class: "key red-drop" }, "dropped above max"));
  const table = el("table", { class: "points" },
    el("caption", {}, label + ": the last 10 seconds"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Second ending"),
      el("th", { scope: "col" }, "Delivered"), el("th", { scope: "col" }, "Offered"),
      el("th", { scope: "col" }, "Dropped above max"))),
    el("tbody"));
  const details = el("details", { class: "table" }, el("summary", {}, "Show the last seconds as a table"), table);
  return { figure: el("figure", { class: "chart-box" }, chart, legend), chart, details, table };
}

function fillTable(table, points) {
  table.tBodies[0].replaceChildren(...points.slice(-10).reverse().map((p) => el("tr", {},
    el("td", {}, timeText(p.t)), el("td", { class: "num" }, fmtRate(p.delivered_bps)),
    el("td", { class: "num" }, fmtRate(p.offered_bps)),
    el("td", { class: "num" }, (p.bytes ? p.bytes.red : 0) + " bytes"))));
}

// Reads Server-Sent Events from chunks of text: "id:", "event:", "data:" lines, a blank line
// ends an event, ":" lines are comments (keep-alives).
class SseParser {
  constructor(onEvent) { this.buf = ""; this.event = ""; this.data = []; this.id = null; this.onEvent = onEvent; }
  push(text) {
    this.buf += text;
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.buf);
      if (!m) return;
      // A chunk may end between the CR and the LF of one line break.
      if (m[0] === "\r" && m.index === this.buf.length - 1) return;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }
  line(line) {
    if (line === "") {
      if (this.data.length) this.onEvent({ id: this.id, event: this.event || "message", data: this.data.join("\n") });
      this.event = "";
      this.data = [];
      return;
    }
    if (line[0] === ":") return;
    const c = line.indexOf(":");
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? "" : line.slice(c + 1);
    if (value[0] === " ") value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
  }
}

// A running block's panel: loads the series, then follows the stream (or polls the series).
class BlockPanel {
  constructor(block, streamed) {
    this.id = block.id;
    this.block = block;
    this.points = [];
    this.next = 0;
    this.loaded = false;
    this.ended = false;
    this.streamed = streamed;
    this.abort = new AbortController();
    const label = "Delivered rate of block " + block.id;
    this.parts = chartFigure("chart-" + block.id, label);
    this.title = el("h3", { id: "block-" + block.id + "-title" });
    this.promise = el("p", { class: "promise" });
    this.now = el("p", { class: "rate-now" });
    this.compliance = complianceEl(block.compliance);
    this.link = el("p", { class: "stream-state help" }, "Loading the series…");
    this.el = el("article", { class: "block panel", id: "block-" + block.id, "data-block": block.id,
                              "aria-labelledby": "block-" + block.id + "-title", tabindex: -1 },
                 this.title, this.promise, this.now, this.compliance, this.parts.figure,
                 this.parts.details, this.link);
    this.update(block);
    this.redraw();
  }

  // Fields of GET /v1/blocks/{id}: state, rates now, compliance.
  update(block) {
    this.block = block;
    this.title.textContent = "Block " + block.id + " · " + block.profile + " · " + block.state;
    this.promise.textContent = "Promised " + rateText(block.min_rate, block.max_rate) +
      " · until " + new Date(block.end_at).toLocaleString() + " · members " + block.members.join(", ");
    this.showRates();
    if (block.compliance) this.compliance.replaceWith(this.compliance = complianceEl(block.compliance));
  }

  // The rates over the last 1 s and 10 s from the points drawn, as segx reckons them (the
  // delivered bits of the last 1 or 10 points over their time), so the figures and the chart
  // agree; before any point, the block's own figures.
  showRates() {
    let r1 = null, r10 = null;
    if (this.points.length) {
      const rate = (n) => {
        let bits = 0, time = 0;
        for (const p of this.points.slice(-n)) {
          bits += (p.delivered_bps || 0) * (p.dt || 1);
          time += p.dt || 1;
        }
        return time > 0 ? bits / time : 0;
      };
      r1 = rate(1);
      r10 = rate(10);
    } else {
      const r = this.block.live && this.block.live.rate && this.block.live.rate.delivered_bps;
      if (r) { r1 = r["1s"]; r10 = r["10s"]; }
    }
    this.now.replaceChildren("Delivered now ",
      el("strong", { "data-bps-1s": r1 === null ? "" : r1 }, fmtRate(r1)), " (1 s) · ",
      el("strong", { "data-bps-10s": r10 === null ? "" : r10 }, fmtRate(r10)), " (10 s)");
  }

  redraw() {
    drawChart(this.parts.chart, this.points, this.block.min_rate, this.block.max_rate,
              "Delivered rate of block " + this.id);
    fillTable(this.parts.table, this.points);
    this.showRates();
  }

  add(points) {
    let added = false;
    for (const p of points) {
      if (p.seq < this.next) continue;  // already drawn (a replay after a reconnect)
      this.points.push(p);
      this.next = p.seq + 1;
      added = true;
    }
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
    if (added) this.redraw();
  }

  async load() {
    try {
      let s;
      // An answer holds at most an hour of points; `more` says there are newer ones.
      do {
        s = await api("GET", "/v1/blocks/" + encodeURIComponent(this.id) + "/series?since=" + this.next);
        this.add(s.points);
        if (s.next > this.next) this.next = s.next;
      } while (s.more && s.points.length);
      if (s.compliance) this.compliance.replaceWith(this.compliance = complianceEl(s.compliance));
      this.loaded = true;
      if (!s.active) this.finish(s.compliance);
      else this.link.textContent = this.streamed ? "Live: following the stream." : "Live: refreshed every 2 s.";
      return true;
    } catch (e) {
      if (e.status === 404) this.link.textContent = "Waiting for the first second of metering…";
      else this.link.textContent = "Cannot read the series: " + e.message;
      return false;
    }
  }

  finish(compliance) {
    this.ended = true;
    this.abort.abort();
    if (compliance) this.compliance.replaceWith(this.compliance = complianceEl(compliance));
    this.link.textContent = "The block has ended; its lease is under My leases.";
    this.el.classList.add("ended");
  }

  // Follows GET /v1/blocks/{id}/stream until `event: end`, reconnecting from the next point
  // after an error; fetch() because EventSource cannot send the Authorization header.
  async follow() {
    let wait = 1000;
    while (!this.ended && !this.abort.signal.aborted) {
      if (!this.loaded && !(await this.load())) { await sleep(2000, this.abort.signal); continue; }
      if (this.ended) return;
      try {
        const res = await fetch("/v1/blocks/" + encodeURIComponent(this.id) + "/stream?since=" + this.next,
          { headers: { "Authorization": "Bearer " + state.token, "Accept": "text/event-stream" },
            signal: this.abort.signal, cache: "no-store" });
        if (res.status === 404 || res.status === 401) {
          this.link.textContent = "The stream is not available (HTTP " + res.status + ").";
          return;
        }
        if (!res.ok) throw new Error("HTTP " + res.status);
        this.link.textContent = "Live: following the stream.";
        wait = 1000;
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let batch = [];
        const parser = new SseParser((ev) => {
          if (ev.event === "point") batch.push(JSON.parse(ev.data));
          else if (ev.event === "end") {
            this.add(batch);
            batch = [];
            let data = null;
            try { data = JSON.parse(ev.data); } catch (e) { data = null; }
            this.finish(data && data.compliance);
          }
        });
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(decoder.decode(value, { stream: true }));
          this.add(batch);  // one redraw per chunk, however many points it held
          batch = [];
          if (this.ended) { reader.cancel().catch(() => {}); return; }
        }
        // Closed without `end`: the server went away or restarted; resume from this.next.
      } catch (e) {
        if (this.abort.signal.aborted) return;
        this.link.textContent = "Stream interrupted (" + e.message + "); reconnecting…";
      }
      await sleep(wait, this.abort.signal);
      wait = Math.min(wait * 2, 15000);
    }
  }

  stop() { this.ended = true; this.abort.abort(); }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

async function renderBlocks() {
  const { blocks } = await api("GET", "/v1/blocks");
  const active = blocks.filter((b) => b.state === "active");
  const keep = new Set(active.map((b) => b.id));
  for (const [id, panel] of Object.entries(state.panels))
    if (!keep.has(id)) { panel.stop(); panel.el.remove(); delete state.panels[id]; }
  const box = $("blocks");
  // GET /v1/blocks carries each block's live rates and compliance.
  for (const block of active) {
    let panel = state.panels[block.id];
    if (!panel) {
      const streams = Object.values(state.panels).filter((p) => p.streamed && !p.ended).length;
      panel = state.panels[block.id] = new BlockPanel(block, streams < MAX_STREAMS);
      box.append(panel.el);
      if (panel.streamed) panel.follow();
      else await panel.load();
    } else {
      panel.update(block);
      if (!panel.streamed && !panel.ended) await panel.load();
    }
  }
  const empty = box.querySelector(":scope > p.empty");
  if (active.length && empty) empty.remove();
  if (!active.length && !empty) box.append(el("p", { class: "help empty" }, "No block is running right now."));
}

// ---- leases: the evidence of a finished block beside the rating form ----

const ENDED = new Set(["finished", "unpaid", "failed"]);

function ratingText(r) {
  const parts = [(r.positive ? "satisfied" : "not satisfied") + (r.score ? ", " + r.score + "/5" : ""),
                 " by " + r.by + (r.device ? " (" + r.device + ")" : "")];
  if (r.comment) parts.push(": “" + r.comment + "”");
  return parts.join("");
}

function ratingEl(r) {
  const d = r.delivery;
  return el("li", { class: "rating", "data-rating": r.id },
    el("span", {}, (r.kind === "recipient" ? "Note on " + r.of + " " : "") + ratingText(r)),
    d && d.compliant_ratio !== undefined && d.compliant_ratio !== null
      ? el("span", { class: "delivery", "data-compliant-ratio": d.compliant_ratio },
           " · rated after " + fmtRatio(d.compliant_ratio) + " compliant delivery" +
           (d.seconds ? " (" + d.seconds + " s measured)" : ""))
      : null);
}

// The lease's block as measured: its chart from the series (while segx keeps one) and the
// compliance summary. Read once the lease has ended; it does not change after that.
async function leaseEvidence(lease) {
  const id = lease.block || "lease-" + lease.id;
  const box = el("div", { class: "evidence", "data-block": id });
  let block;
  try {
    block = await api("GET", "/v1/blocks/" + encodeURIComponent(id));
  } catch (e) {
    box.append(el("p", { class: "help" }, "No measurement of block " + id + ": " + e.message));
    if (e.status !== 404) delete state.evidence[lease.id];  // try again on the next refresh
    return box;
  }
  box.append(el("h4", {}, "What block " + id + " delivered"));
  box.append(complianceEl(block.compliance));
  if (block.live) {
    try {
      let s = await api("GET", "/v1/blocks/" + encodeURIComponent(id) + "/series");
      const points = s.points;
      while (s.more && s.points.length && points.length < MAX_POINTS) {
        s = await api("GET", "/v1/blocks/" + encodeURIComponent(id) + "/series?since=" + s.next);
        points.push(...s.points);
      }
      const label = "Delivered rate of block " + id;
      const parts = chartFigure("lease-chart-" + lease.id, label);
      drawChart(parts.chart, points, s.min_rate, s.max_rate, label);
      fillTable(parts.table, points);
      box.append(parts.figure, parts.details);
    } catch (e) {
      box.append(el("p", { class: "help" }, "The per-second series is gone: " + e.message));
    }
  } else {
    box.append(el("p", { class: "help" }, "segx no longer keeps this block's per-second series; " +
                                          "the summary is the one stored with the lease's usage."));
  }
  return box;
}

function rateForm(lease) {
  const id = lease.id;
  const draft = state.drafts["rate-" + id] || {};
  const yes = el("input", { type: "radio", name: "satisfied", id: "sat-yes-" + id, value: "yes",
                            required: true, checked: draft.satisfied === "yes" });
  const no = el("input", { type: "radio", name: "satisfied", id: "sat-no-" + id, value: "no",
                           checked: draft.satisfied === "no" });
  const score = el("select", { id: "score-" + id, name: "score" },
    el("option", { value: "" }, "no score"),
    ...[5, 4, 3, 2, 1].map((n) => el("option", { value: n, selected: draft.score === String(n) }, n + " of 5")));
  const comment = el("textarea", { id: "comment-" + id, name: "comment", maxlength: 2000, rows: 2 });
  comment.value = draft.comment || "";
  const save = () => {
    state.drafts["rate-" + id] = { satisfied: yes.checked ? "yes" : no.checked ? "no" : "",
                                   score: score.value, comment: comment.value };
  };
  for (const input of [yes, no, score, comment]) input.addEventListener("input", save);
  const form = el("form", { class: "rate-form", "data-lease": id, "aria-label": "Rate the provider of lease " + id },
    el("fieldset", {}, el("legend", {}, "Were you satisfied with " + lease.provider + "?"),
       yes, el("label", { for: "sat-yes-" + id }, "Yes"), " ", no, el("label", { for: "sat-no-" + id }, "No")),
    el("label", { for: "score-" + id }, "Score"), score,
    el("label", { for: "comment-" + id }, "Comment"), comment,
    el("button", { type: "submit" }, "Rate provider"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { satisfied: yes.checked };
    if (score.value) body.score = Number(score.value);
    if (comment.value.trim()) body.comment = comment.value.trim();
    try {
      await api("POST", "/v1/leases/" + id + "/ratings", body);
      delete state.drafts["rate-" + id];
      say("Rated the provider of lease " + id + ".", "ok");
      await refresh();
    } catch (e) {
      say("Rating refused: " + e.message, "error");
    }
  });
  return form;
}

function leaseInfo(lease) {
  return el("div", { class: "info" },
    el("h3", { id: "lease-" + lease.id + "-title" },
       "Lease " + lease.id + " · lot " + lease.lot + " · " + lease.profile + " · " + lease.state),
    el("dl", {},
      el("dt", {}, "Provider"), el("dd", {}, lease.provider),
      el("dt", {}, "Block"), el("dd", {}, new Date(lease.start_at).toLocaleString() + " – " +
                                         new Date(lease.end_at).toLocaleString()),
      el("dt", {}, "Rate"), el("dd", {}, rateText(lease.min_rate, lease.max_rate)),
      el("dt", {}, "Price"), el("dd", {}, lease.units + " × " + lease.unit_price),
      el("dt", {}, "Members"), el("dd", {}, lease.members.join(", "))),
    lease.failure ? el("p", { class: "help" }, "Failure: " + lease.failure) : null);
}

async function renderLeases() {
  const { leases } = await api("GET", "/v1/leases");
  const shown = leases.slice(-20).reverse();
  const box = $("leases");
  const keep = new Set(shown.map((l) => String(l.id)));
  for (const card of box.querySelectorAll("article.lease"))
    if (!keep.has(card.dataset.lease)) card.remove();
  for (const key of Object.keys(state.evidence))
    if (!keep.has(key)) delete state.evidence[key];
  const empty = box.querySelector(":scope > p.empty");
  if (empty) empty.remove();
  const me = state.me.acts_for;
  let prev = null;
  for (const lease of shown) {
    let card = box.querySelector('article.lease[data-lease="' + lease.id + '"]');
    if (!card) {
      card = el("article", { class: "lease panel", "data-lease": lease.id,
                             "aria-labelledby": "lease-" + lease.id + "-title" },
                leaseInfo(lease), el("div", { class: "lease-body" },
                  el("div", { class: "evidence-slot" }), el("div", { class: "rating-slot" })));
      if (prev) prev.after(card); else box.prepend(card);
    } else {
      card.querySelector(".info").replaceWith(leaseInfo(lease));
    }
    prev = card;
    const ended = ENDED.has(lease.state);
    const slot = card.querySelector(".evidence-slot");
    if (!ended) {
      if (state.evidence[lease.id]) delete state.evidence[lease.id];
      slot.replaceChildren(lease.state === "active"
        ? el("p", { class: "help" }, "Running: its live chart is under ",
             el("a", { href: "#block-" + lease.block }, "Running blocks"), ".")
        : el("p", { class: "help" }, "The block has not run yet."));
    } else if (!state.evidence[lease.id]) {
      state.evidence[lease.id] = true;
      slot.replaceChildren(await leaseEvidence(lease));
    }
    const ratings = el("div", { class: "ratings" });
    if (lease.ratings.length)
      ratings.append(el("h4", {}, "Ratings"), el("ul", {}, ...lease.ratings.map(ratingEl)));
    const mayRate = canBid() && lease.state === "finished" &&
                    !lease.ratings.some((r) => r.kind === "provider" && r.by === me);
    const rslot = card.querySelector(".rating-slot");
    const form = rslot.querySelector("form.rate-form");
    if (mayRate && form) {
      rslot.querySelector(".ratings").replaceWith(ratings);
    } else {
      rslot.replaceChildren(ratings);
      if (mayRate) rslot.append(rateForm(lease));
    }
  }
  if (!shown.length) box.append(el("p", { class: "help empty" }, "No lease yet."));
}

async function refresh() {
  // A slow answer must not let two refreshes build the same cards at once.
  if (state.refreshing) return;
  state.refreshing = true;
  try {
    const lots = await api("GET", "/v1/lots");
    state.skewMs = Date.parse(lots.now) - Date.now();
    state.lots = lots.lots;
    renderLots();
    const { bids } = await api("GET", "/v1/bids");
    renderMyBids(state.me.role === "provider" || state.me.role === "admin"
                 ? bids.filter((b) => b.bidder === state.me.acts_for) : bids);
    if (state.me.role === "provider" || state.me.role === "admin") await renderProviderBids();
    await renderBlocks();
    await renderLeases();
  } catch (e) {
    if (e.status === 401) { signOut("Your token is no longer accepted; sign in again."); return; }
    say("Cannot reach segx: " + e.message, "error");
  } finally {
    state.refreshing = false;
  }
}

async function signIn(token) {
  state.token = token;
  try {
    state.me = await api("GET", "/v1/whoami");
  } catch (e) {
    state.token = "";
    say(e.status === 401 ? "That token is not accepted." : "Sign-in failed: " + e.message, "error");
    return;
  }
  sessionStorage.setItem("segx-token", token);
  $("signin").hidden = true;
  $("session").hidden = false;
  $("whoami").textContent = "Signed in as " + state.me.principal + " (" + state.me.role +
    (state.me.role === "device" ? " of " + state.me.owner : "") + ")";
  const seller = state.me.role === "provider" || state.me.role === "admin";
  $("provider-section").hidden = !seller;
  $("blocks-title").textContent = seller ? "Active blocks of my lots" : "Running blocks";
  $("leases-title").textContent = seller ? "Leases of my lots" : "My leases";
  $("lots").replaceChildren();
  $("blocks").replaceChildren();
  $("leases").replaceChildren();
  $("board").hidden = false;
  say("Signed in as " + state.me.principal + ".", "ok");
  await refresh();
  $("open-lots").focus();
  clearInterval(state.timer);
  state.timer = setInterval(refresh, POLL_MS);
}

function signOut(message) {
  clearInterval(state.timer);
  for (const panel of Object.values(state.panels)) panel.stop();
  state.panels = {};
  state.evidence = {};
  sessionStorage.removeItem("segx-token");
  state.token = "";
  state.me = null;
  $("board").hidden = true;
  $("lots").replaceChildren();
  $("blocks").replaceChildren();
  $("leases").replaceChildren();
  $("session").hidden = true;
  $("signin").hidden = false;
  $("token").value = "";
  say(message || "Signed out.");
  $("token").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    signIn($("token").value.trim());
  });
  $("signout").addEventListener("click", () => signOut());
  setInterval(tickCountdowns, 1000);
  if (state.token) signIn(state.token); else $("token").focus();
});
