// segx market board: plain JavaScript over the REST API (/v1), no build step. It polls every
// two seconds; every value from the server is put in the page as text, never as HTML.
"use strict";

const POLL_MS = 2000;
const state = { token: sessionStorage.getItem("segx-token") || "", me: null, skewMs: 0,
                lots: [], timer: null, drafts: {} };

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

async function refresh() {
  try {
    const lots = await api("GET", "/v1/lots");
    state.skewMs = Date.parse(lots.now) - Date.now();
    state.lots = lots.lots;
    renderLots();
    const { bids } = await api("GET", "/v1/bids");
    renderMyBids(state.me.role === "provider" || state.me.role === "admin"
                 ? bids.filter((b) => b.bidder === state.me.acts_for) : bids);
    if (state.me.role === "provider" || state.me.role === "admin") await renderProviderBids();
  } catch (e) {
    if (e.status === 401) { signOut("Your token is no longer accepted; sign in again."); return; }
    say("Cannot reach segx: " + e.message, "error");
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
  $("provider-section").hidden = !(state.me.role === "provider" || state.me.role === "admin");
  $("lots").replaceChildren();
  $("board").hidden = false;
  say("Signed in as " + state.me.principal + ".", "ok");
  await refresh();
  $("open-lots").focus();
  clearInterval(state.timer);
  state.timer = setInterval(refresh, POLL_MS);
}

function signOut(message) {
  clearInterval(state.timer);
  sessionStorage.removeItem("segx-token");
  state.token = "";
  state.me = null;
  $("board").hidden = true;
  $("lots").replaceChildren();
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
