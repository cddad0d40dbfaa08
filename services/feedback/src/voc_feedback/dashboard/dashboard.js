// Manager dashboard: after a staff sign-in (session.js), polls the analytics API every 2 s with the
// staff member's token and draws its charts as inline SVG; the header says who is signed in, their
// role and their stores. No framework and no CDN: served by the feedback service itself.
"use strict";
(function () {
  const POLL_MS = 2000;
  const WEBHOOK_CHECK_MS = 60000;  // the disabled webhooks' notice: a change of hours, not seconds
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const session = window.VocConsole;
  let lang = localStorage.getItem("voc-dashboard-lang") ||
    ((navigator.language || "ko").toLowerCase().startsWith("ko") ? "ko" : "en");
  let signedIn = false;
  let languageWritten = Promise.resolve();  // the language switch's last write to the directory
  let storeNames = {};  // the reader's stores as notify's directory names them
  let storeZones = {};  // and the time zone each keeps (times of its cases are shown in it)
  let data = null;
  let cases = [];
  let againstTargets = null;  // null: not loaded or refused (the rest of the board still shows)
  let outreachReport = null;
  let storeAlerts = [];  // pattern and heads-up alerts (notify); null: could not be read
  let disabledWebhooks = [];  // webhook endpoints notify disabled (the cx_admin's notice)
  let playbookTitles = {};  // playbook id → its title {ko, en}: actions' library, which every role reads
  // What this reader was refused, so the 2 s poll does not ask again: "board" (a role without
  // the dashboard), or the store picked outside their scope; and the alert kinds (the analyst).
  let refused = null;
  let storeAlertsRefused = false;
  const seen = new Set();
  let firstLoad = true;
  // Refreshes are numbered: an answer older than one already drawn, or asked before a correction
  // landed (it may hold the labels as they were), is not drawn; the correction's own refresh is.
  let refreshes = 0, drawnRefresh = 0, staleUpTo = 0, draws = 0;

  // Only the language may come in the URL (#lang=en); a token never does.
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("lang") === "en" || hash.get("lang") === "ko") lang = hash.get("lang");
  // A link to one store's board (`#store=<id>`): the service decides whether the reader may see it.
  const linkedStore = hash.get("store");

  function t(key) { return session.label(lang, key); }
  function said(key, vars) { return session.fill(t(key), vars); }
  function labelsOf(key) { return session.labelGroup(lang, key); }
  function el(tag, attrs, text) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return Math.round(seconds) + (lang === "ko" ? "초" : "s");
    if (seconds < 3600) return Math.round(seconds / 60) + (lang === "ko" ? "분" : "m");
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + (lang === "ko" ? "시간" : "h");
    return (seconds / 86400).toFixed(1) + (lang === "ko" ? "일" : "d");
  }
  // A moment in the time zone of the store it happened at (notify's directory), else the reader's.
  function storeTime(at, storeId) { return session.formatTime(at, lang, storeZones[storeId]); }
  function pct(v) { return v === null || v === undefined ? "—" : Math.round(v * 100) + "%"; }
  function num(v) { return v === null || v === undefined ? "—" : String(v); }
  function label(category) {
    const entry = data && data.labels && data.labels[category];
    return entry ? (entry[lang] || entry.en) : category;
  }

  function applyLanguage() {
    document.documentElement.lang = lang;
    document.title = "Frontline VoC — " + t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    $("lang").textContent = t("switch");
    $("lang").lang = lang === "ko" ? "en" : "ko";  // the switch names the other language in it
    renderWho();
    renderWebhookNotice();
    if (data) render();
    document.dispatchEvent(new CustomEvent("voc-language", {detail: lang}));
  }

  async function get(path) {
    const answer = await session.api("feedback", path);
    if (answer.status === 401 || answer.status === 403) {
      throw Object.assign(new Error("auth"), {status: answer.status, detail: answer.body && answer.body.detail});
    }
    if (!answer.ok) throw new Error(path + ": " + answer.status);
    return answer.body;
  }

  // Who is signed in, their role and what they read: every store, or their stores (and area).
  function renderWho() {
    const staff = session.staff;
    $("who").hidden = !staff;
    if (!staff) return;
    $("who-name").textContent = staff.name;
    $("who-role").textContent = labelsOf("roles")[staff.role] || staff.role;
    $("who-role").dataset.role = staff.role;
    const everyStore = staff.role === "cx_admin" || staff.role === "analyst";
    const stores = (staff.store_ids || []).map((id) => storeNames[id] || id);
    const parts = everyStore ? [t("every_store")] : stores;
    if (staff.area_id) parts.push(`${staff.area_id} (${t("area_of")})`);
    $("who-scope").textContent = parts.join(", ") || "—";
    $("who-scope").dataset.stores = everyStore ? "*" : (staff.store_ids || []).join(",");
  }

  // A section of its own (targets, outreach): a failure leaves that section saying so.
  async function getSoft(path) {
    try { return await get(path); } catch (error) { return null; }
  }

  async function refresh() {
    const store = $("store").value;
    if (refused === "board" || (refused !== null && refused === store)) return;
    const mine = ++refreshes;
    const params = new URLSearchParams();
    if (store) params.set("store_id", store);
    const since = new Date(Date.now() - Number($("period").value) * 86400000).toISOString();
    // The oldest first, as many as the API gives (200): with its default 50 a busy store's newest
    // cases never reached the list.
    const openParams = new URLSearchParams(params);
    openParams.set("limit", "200");
    const analyticsParams = new URLSearchParams(params);
    analyticsParams.set("from", since);
    analyticsParams.set("tz", session.viewerZone());
    try {
      // The targets over the period picked, as the rest of the board (they were the last 8 weeks
      // under "last 30 days"): the same items, so the same NPS as the tile; by week for the trend.
      const targetsParams = new URLSearchParams(analyticsParams);
      const outreachParams = new URLSearchParams(params);
      outreachParams.set("from", new Date(Date.now() - 90 * 86400000).toISOString());
      const [analytics, open, goals, work] = await Promise.all([
        get("/v1/analytics?" + analyticsParams), get("/v1/analytics/open-cases?" + openParams),
        getSoft("/v1/analytics/targets?" + targetsParams), getSoft("/v1/analytics/outreach?" + outreachParams),
        loadStoreAlerts(),
      ]);
      if (mine <= staleUpTo || mine < drawnRefresh) return;
      drawnRefresh = mine;
      data = analytics;
      cases = open.cases;
      againstTargets = goals;
      outreachReport = work;
      $("login").hidden = true;
      $("board").hidden = (document.body.dataset.view || "board") !== "board";
      $("live").classList.remove("stale");
      $("live").textContent = t("live");
      render();
      document.body.dataset.drawn = String(++draws);  // answers drawn so far (what tests wait on)
      $("store-refused").hidden = true;
      refused = null;
      document.body.dataset.loaded = "true";
    } catch (error) {
      if (mine < drawnRefresh) return;  // a newer answer is on the board: this failure is stale
      if (error.status === 403 && store) {  // a store outside the reader's scope: said, board kept
        refused = store;
        const line = $("store-refused");
        line.textContent = t("store_refused").replace("{store}", storeNames[store] || store);
        line.hidden = false;
        document.body.dataset.loaded = "true";
        return;
      }
      if (error.status === 403) {  // a role without the dashboard (a shift lead): say so, keep sign-out
        refused = "board";
        $("board").hidden = true;
        $("no-access").hidden = false;
        showControls(false);
        session.staffAppUrl().then((url) => { $("staff-app-link").href = url; });
        return;
      }
      if (error.auth || error.status === 401) return;  // signed out: the session's event shows the form
      $("live").classList.add("stale");
      $("live").textContent = t("stale");
    }
  }

  function tile(key, value, testid, hint, sub) {
    const node = el("div", hint ? {class: "tile", "data-testid": testid, title: hint} : {class: "tile", "data-testid": testid});
    node.append(el("div", {class: "label"}, t(key)), el("div", {class: "value"}, value));
    if (sub) node.append(el("div", {class: "sub"}, sub));
    return node;
  }

  function renderTiles() {
    const box = $("tiles");
    box.replaceChildren(
      tile("volume", num(data.volume), "tile-volume"),
      tile("sentiment_index", num(data.sentiment_index), "tile-sentiment"),
      tile("nps", num(data.nps.score), "tile-nps"),
      tile("csat", num(data.csat.average), "tile-csat"),
      tile("ack_p50", duration(data.loop.time_to_acknowledge_seconds.p50), "tile-ack"),
      // A rate of two answers is not one of two hundred: the tile says how many it is of.
      tile("recovery", pct(data.loop.recovery_rate), "tile-recovery", undefined,
        data.loop.recovery_answers ? t("of_answers").replace("{n}", String(data.loop.recovery_answers)) : ""),
      tile("uncertain", num(data.uncertain), "tile-uncertain", t("uncertain_hint")),
    );
  }

  // What a chart shows, as one line: its title, then each item ("—" when there is none).
  function spokenChart(titleKey, items) {
    return `${t(titleKey)}: ${items.length ? items.join("; ") : "—"}`;
  }

  function renderTrend() {
    const W = 720, H = 212, L = 34, R = 34, B = 22, top = 22;
    const days = data.trend;
    // A chart's name carries its data, for a screen reader (role=img hides the bars' titles).
    const svg = el("svg:svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "data-testid": "trend-chart",
      "aria-label": spokenChart("trend", days.map((d) =>
        `${d.date}: ${d.volume}, ${t("sentiment_index")} ${num(d.sentiment_index)}`))});
    const maxVolume = Math.max(1, ...days.map((d) => d.volume));
    const slot = (W - L - R) / Math.max(1, days.length);
    const y = (v) => top + (H - top - B) * (1 - v / maxVolume);
    const ys = (v) => top + (H - top - B) * (1 - (v + 100) / 200);
    svg.append(el("svg:line", {class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B}));
    svg.append(el("svg:text", {x: 2, y: top + 8}, String(maxVolume)));
    svg.append(el("svg:text", {x: W - R + 4, y: top + 8}, "+100"), el("svg:text", {x: W - R + 4, y: H - B}, "−100"));
    // The two scales say what they measure: bars are the day's feedback, the line its index.
    svg.append(el("svg:text", {class: "axis-title", x: 2, y: 10, "data-testid": "trend-axis-volume"}, t("trend_axis_volume")),
      el("svg:text", {class: "axis-title", x: W - 2, y: 10, "text-anchor": "end", "data-testid": "trend-axis-index"},
        t("trend_axis_index")));
    const points = [];
    days.forEach((d, i) => {
      const x = L + i * slot;
      const bw = Math.min(48, slot * 0.7);
      const bar = el("svg:rect", {class: "bar", x: x + (slot - bw) / 2, width: Math.max(1, bw), y: y(d.volume),
        height: H - B - y(d.volume), "data-date": d.date, "data-volume": d.volume});
      bar.append(el("svg:title", {}, `${d.date}: ${d.volume}, ${t("sentiment_index")} ${num(d.sentiment_index)}`));
      svg.append(bar);
      if (d.sentiment_index !== null) points.push([x + slot / 2, ys(d.sentiment_index)]);
      if (days.length <= 14 || i % Math.ceil(days.length / 10) === 0)
        svg.append(el("svg:text", {x: x + slot / 2, y: H - 6, "text-anchor": "middle"}, d.date.slice(5)));
    });
    if (points.length) {
      svg.append(el("svg:polyline", {class: "line", points: points.map((p) => p.join(",")).join(" ")}));
      for (const [px, py] of points) svg.append(el("svg:circle", {class: "point", cx: px, cy: py, r: 3}));
    }
    $("trend").replaceChildren(svg);
  }

  function renderStores() {
    const rows = data.by_store;
    const W = 400, rowH = 38, H = Math.max(1, rows.length) * rowH + 10, L = 110, span = W - L - 70;
    const svg = el("svg:svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "data-testid": "stores-chart",
      "aria-label": spokenChart("stores", rows.map((s) => `${s.store_name}: NPS ${num(s.nps)}, CSAT ${num(s.csat)}`))});
    const mid = L + span / 2;
    rows.forEach((s, i) => {
      const y = 6 + i * rowH;
      svg.append(el("svg:text", {x: 0, y: y + 13}, s.store_name));
      const score = s.nps === null ? 0 : s.nps;
      const w = Math.abs(score) / 100 * (span / 2);
      svg.append(el("svg:rect", {class: "bar" + (score < 0 ? " neg" : ""), x: score < 0 ? mid - w : mid, y: y + 2,
        width: Math.max(1, w), height: 13, "data-store": s.store_id, "data-nps": num(s.nps)}));
      svg.append(el("svg:text", {x: W - 62, y: y + 13}, "NPS " + num(s.nps)));
      const cw = (s.csat || 0) / 5 * span;
      svg.append(el("svg:rect", {class: "bar csat", x: L, y: y + 18, width: Math.max(1, cw), height: 10,
        "data-store": s.store_id, "data-csat": num(s.csat)}));
      svg.append(el("svg:text", {x: W - 62, y: y + 27}, "CSAT " + num(s.csat)));
    });
    svg.append(el("svg:line", {class: "axis", x1: mid, x2: mid, y1: 0, y2: H}));
    $("stores").replaceChildren(svg);
  }

  function renderCategories() {
    const entries = Object.entries(data.category_mix);
    // The label column fits the longest label (a chain's own English names ran into the bars),
    // by an 11 px font's widths: a Hangul syllable about 11 units, a Latin letter about 6.3.
    const textWidth = (text) => [...text].reduce((w, c) => w + (c.codePointAt(0) >= 0x1100 ? 11 : 6.3), 0);
    const longest = Math.max(0, ...entries.map(([category]) => textWidth(label(category))));
    const W = 360, rowH = 20, H = Math.max(1, entries.length) * rowH + 4;
    const L = Math.min(200, Math.max(60, Math.ceil(longest) + 8));
    const max = Math.max(1, ...entries.map(([, n]) => n));
    const svg = el("svg:svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "data-testid": "category-chart",
      "aria-label": spokenChart("categories", entries.map(([category, n]) => `${label(category)}: ${n}`))});
    entries.forEach(([category, n], i) => {
      const y = 2 + i * rowH;
      svg.append(el("svg:text", {x: 0, y: y + 13}, label(category)));
      svg.append(el("svg:rect", {class: "bar", x: L, y: y + 3, height: 13, width: Math.max(1, n / max * (W - L - 40)),
        "data-category": category, "data-count": n}));
      svg.append(el("svg:text", {x: L + n / max * (W - L - 40) + 4, y: y + 13}, String(n)));
    });
    $("categories").replaceChildren(svg);
  }

  function renderLoop() {
    const loop = data.loop;
    const dl = el("dl", {class: "kpis", "data-testid": "loop-kpis"});
    const rows = [
      ["cases", num(loop.cases)], ["ack_p50", duration(loop.time_to_acknowledge_seconds.p50)],
      ["ack_p90", duration(loop.time_to_acknowledge_seconds.p90)],
      ["resolve_p50", duration(loop.time_to_resolve_seconds.p50)],
      ["resolve_p90", duration(loop.time_to_resolve_seconds.p90)], ["breach", pct(loop.sla_breach_rate)],
      ["messaged", num(loop.follow_ups_messaged)], ["undelivered", num(loop.follow_ups_undelivered)],
      ["followups", num(loop.follow_ups_answered)],
      ["answer_rate", pct(loop.follow_up_answer_rate)], ["recovery", pct(loop.recovery_rate)],
      ["reopened", num(loop.reopened)], ["revisit", pct(loop.revisit_intent_rate)],
      ["fyi_alerts", num(loop.fyi)],  // praise on an info plan: told, not a case (not in "open")
    ];
    for (const [key, value] of rows) dl.append(el("dt", {}, t(key)), el("dd", {}, value));
    $("loop").replaceChildren(dl);
  }

  // A plan by its title in the reader's language, its id beside (what the API and CSV say); by
  // its id alone until actions' library is read, or for a plan no longer in it.
  function playbookName(id) {
    const title = playbookTitles[id] || {};
    const text = title[lang] || title.en || title.ko;
    // A heads-up's title names its customer ({customer.name}): in a table of plans, "…".
    return text ? `${text.replace(/\{[^}]*\}/g, "…")} (${id})` : id;
  }
  async function loadPlaybookTitles() {
    try {
      const answer = await session.api("actions", "/v1/playbooks");
      if (!answer.ok || !signedIn) return;
      playbookTitles = Object.fromEntries(answer.body.playbooks.map((p) => [p.id, p.title || {}]));
      if (data) renderAdherence();
    } catch (error) { /* unreachable: the table names plans by id */ }
  }

  // Plan adherence (#18): of the resolved alerts' plan steps, how many were ticked done first.
  function renderAdherence() {
    const a = data.plan_adherence;
    const box = $("adherence");
    box.replaceChildren();
    if (!a) return;
    box.append(el("p", {"data-testid": "adherence-total"},
      `${t("rate")} ${pct(a.rate)} · ${t("steps")} ${a.steps_done}/${a.steps_total} · ${t("alerts")} ${a.alerts}`));
    for (const [key, rows, name] of [["by_store", a.by_store, (r) => r.store_name],
                                     ["by_playbook", a.by_playbook, (r) => r.kind && r.kind !== "feedback"
                                       ? `${playbookName(r.playbook_id)} · ${labelsOf("kinds")[r.kind] || r.kind}`
                                       : playbookName(r.playbook_id)]]) {
      const table = el("table", {"data-testid": "adherence-" + key});
      const head = el("tr", {});
      for (const h of [key, "alerts", "steps", "rate"]) head.append(el("th", {}, t(h)));
      table.append(el("thead", {}), el("tbody", {}));
      table.querySelector("thead").append(head);
      for (const r of rows) {
        const row = el("tr", {"data-key": key === "by_store" ? r.store_id : r.playbook_id});
        row.append(el("td", {}, name(r)), el("td", {}, String(r.alerts)),
          el("td", {}, `${r.steps_done}/${r.steps_total}`), el("td", {class: "rate"}, pct(r.rate)));
        table.querySelector("tbody").append(row);
      }
      box.append(table);
    }
  }

  // The alert kinds beyond one item (#18 §3 §4): pattern and heads-up alerts still open or
  // acknowledged, from notify with the signed-in staff member's own token (their scope), each
  // titled in their language; the store picker narrows them.
  async function loadStoreAlerts() {
    if (storeAlertsRefused) return;
    const answers = await Promise.all(["pattern", "heads_up"].map((kind) =>
      session.api("notify", `/v1/alerts?kind=${kind}&limit=50`).catch(() => null)));
    // A role that gets no alerts (the analyst): the section is not theirs, not an outage.
    if (answers.some((a) => a && a.status === 403)) { storeAlertsRefused = true; return; }
    if (answers.some((a) => !a || !a.ok)) { storeAlerts = null; return; }
    storeAlerts = answers.flatMap((a) => a.body.alerts).filter((a) => a.status !== "resolved")
      .sort((x, y) => y.created_at - x.created_at);
  }

  function renderStoreAlerts() {
    const box = $("store-alerts");
    box.closest("section").hidden = storeAlertsRefused;
    box.replaceChildren();
    if (storeAlerts === null) { box.append(el("p", {class: "muted"}, t("unavailable"))); return; }
    const store = $("store").value;
    const shown = storeAlerts.filter((a) => !store || a.store_id === store);
    if (!shown.length) { box.append(el("p", {class: "muted", "data-testid": "store-alerts-none"}, t("none"))); return; }
    const table = el("table", {"data-testid": "store-alerts"});
    const head = el("tr", {});
    for (const h of ["kind", "store", "alert_title", "status", "age"]) head.append(el("th", {}, t(h)));
    table.append(el("thead", {}), el("tbody", {}));
    table.querySelector("thead").append(head);
    const now = Date.now() / 1000;
    for (const a of shown) {
      const row = el("tr", {"data-id": a.id, "data-kind": a.kind});
      row.append(el("td", {class: "kind"}, labelsOf("kinds")[a.kind] || a.kind),
        el("td", {}, storeNames[a.store_id] || a.store_id), el("td", {class: "text", title: a.body || ""}, a.title),
        el("td", {}, labelsOf("statuses")[a.status] || a.status),
        el("td", {"data-received": a.created_at, class: "age", title: storeTime(a.created_at, a.store_id)},
          duration(now - a.created_at)));
      table.querySelector("tbody").append(row);
    }
    box.append(table);
  }

  // Webhook endpoints notify disabled (a receiver answering 410, or failing for 24 h: #19), told
  // on the board to whoever may enable them again: the cx_admin only asks (notify refuses every
  // other role). Read at sign-in and each minute on the board; the Webhooks view's own reading
  // (admin.js, "voc-webhooks") redraws it at once, so an enable there is not shown a minute late.
  async function checkWebhooks() {
    if (!session.isAdmin(session.staff)) return;
    const answer = await session.api("notify", "/v1/admin/webhooks").catch(() => null);
    if (answer && answer.ok) showWebhooks(answer.body.webhooks);
  }
  function showWebhooks(webhooks) {
    disabledWebhooks = webhooks.filter((w) => w.status === "disabled");
    renderWebhookNotice();
  }
  function renderWebhookNotice() {
    const box = $("webhook-notice");
    const shown = signedIn ? disabledWebhooks : [];
    box.hidden = !shown.length;
    const texts = labelsOf("webhooks_disabled");
    const text = texts[new Intl.PluralRules(session.dateLocale(lang)).select(shown.length)] || texts.other || "";
    $("webhook-notice-title").textContent = text.replace("{count}", String(shown.length));
    // Each by its description, else its URL; the reason is notify's words, in English.
    box.querySelector("ul").replaceChildren(...shown.map((w) => {
      const item = el("li", {"data-id": w.id});
      item.append(`${w.description || w.url}: `, webhookReason(w.disabled_reason));
      return item;
    }));
  }
  document.addEventListener("voc-webhooks", (event) => showWebhooks(event.detail));
  $("webhook-notice").querySelector("button.open-webhooks").addEventListener("click", () => {
    window.VocViews.show("webhooks");
    $("webhooks-title").focus();  // where the disabled rows are (the pressed button is gone)
  });

  function metricValue(metric, value) {
    if (value === null || value === undefined) return "—";
    return metric === "recovery_rate" ? pct(value) : String(value);
  }

  // A small line of the weekly values (gaps where a week had no data), the target as a dashed line.
  // Its name reads the weeks' values out, for a screen reader (a gap is "—").
  function sparkline(metric, values, target) {
    const W = 90, H = 24;
    const present = values.filter((v) => v !== null);
    const all = target === null ? present : [...present, target];
    const spoken = values.map((v) => metricValue(metric, v)).join(", ");
    const svg = el("svg:svg", {viewBox: `0 0 ${W} ${H}`, class: "spark", role: "img",
      "aria-label": `${labelsOf("metrics")[metric]} · ${t("weekly_trend")}: ${spoken || "—"}`});
    if (!all.length) return svg;
    const lo = Math.min(...all), hi = Math.max(...all), span = hi - lo || 1;
    const x = (i) => 2 + i * (W - 4) / Math.max(1, values.length - 1);
    const y = (v) => H - 2 - (v - lo) / span * (H - 4);
    if (target !== null) svg.append(el("svg:line", {class: "goal", x1: 0, x2: W, y1: y(target), y2: y(target)}));
    const points = values.map((v, i) => v === null ? null : `${x(i)},${y(v)}`).filter(Boolean);
    if (points.length) svg.append(el("svg:polyline", {class: "line", points: points.join(" ")}));
    return svg;
  }

  // Each store (and area) of the reader: every metric, its target and whether it is met, the trend.
  function renderTargets() {
    const box = $("targets");
    box.replaceChildren();
    $("targets-period").textContent = t("targets_period").replace("{period}", $("period").selectedOptions[0].textContent);
    if (!againstTargets) { box.append(el("p", {}, t("unavailable"))); return; }
    const metrics = ["nps", "csat", "ack_minutes", "resolve_minutes", "recovery_rate"];
    const table = el("table", {class: "targets"});
    const head = el("tr", {});
    head.append(el("th", {}, t("place")));
    for (const m of metrics) head.append(el("th", {}, labelsOf("metrics")[m]));
    table.append(el("thead", {}), el("tbody", {}));
    table.querySelector("thead").append(head);
    for (const place of againstTargets.places) {
      const row = el("tr", {"data-place": place.id, "data-kind": place.kind});
      row.append(el("td", {}, place.kind === "area" ? `${place.name} (${t("area")})` : place.name));
      for (const m of place.metrics) {
        const state = m.met === null ? "none" : (m.met ? "met" : "missed");
        const cell = el("td", {class: "goal-" + state, "data-metric": m.metric, "data-met": state,
          "data-target": m.target === null ? "" : String(m.target)});
        cell.append(el("div", {class: "value"}, metricValue(m.metric, m.value)));
        cell.append(el("div", {class: "goal-text"}, m.target === null ? t("no_target")
          : `${t("target")} ${m.direction === "at_most" ? "≤" : "≥"} ${metricValue(m.metric, m.target)}` +
            (m.met === null ? "" : ` · ${t(m.met ? "met" : "missed")}`)));
        cell.append(sparkline(m.metric, m.trend, m.target));
        row.append(cell);
      }
      table.querySelector("tbody").append(row);
    }
    box.append(table);
  }

  // Outreach work (profile's report): per store and list, contact rate and revisits reached vs not.
  function renderOutreach() {
    const box = $("outreach");
    box.replaceChildren();
    if (!outreachReport) { box.append(el("p", {}, t("unavailable"))); return; }
    if (!outreachReport.rows.length) { box.append(el("p", {}, t("none"))); return; }
    const table = el("table", {});
    const head = el("tr", {});
    for (const h of ["store", "list", "assigned", "reached", "contact_rate", "back_reached", "back_not"])
      head.append(el("th", {}, t(h)));
    table.append(el("thead", {}), el("tbody", {}));
    table.querySelector("thead").append(head);
    for (const r of outreachReport.rows) {
      const row = el("tr", {"data-store": r.store_id, "data-list": r.list_kind});
      row.append(el("td", {}, r.store_name), el("td", {}, labelsOf("lists")[r.list_kind] || r.list_kind),
        el("td", {class: "assigned"}, String(r.assigned)), el("td", {class: "reached"}, String(r.reached)),
        el("td", {class: "contact-rate"}, pct(r.contact_rate)),
        el("td", {class: "back-reached"}, `${pct(r.revisit_rate_reached)} (${r.came_back_reached}/${r.reached})`),
        el("td", {class: "back-not"}, `${pct(r.revisit_rate_not_reached)} (${r.came_back_not_reached}/${r.not_reached})`));
      table.querySelector("tbody").append(row);
    }
    box.append(table);
  }

  function renderIssues() {
    const list = $("issues");
    list.replaceChildren();
    if (!data.top_issues.length) list.append(el("li", {}, t("none")));
    for (const issue of data.top_issues)
      list.append(el("li", {}, `${issue.store_name} · ${label(issue.category)} — ${issue.count}${t("times")}`));
  }

  // The category, and when the classifier was not sure of it (#17) a badge saying so.
  function categoryCell(c) {
    const cell = el("td", {}, label(c.category));
    if (c.uncertain) {
      cell.append(" ", el("span", {class: "uncertain", "data-uncertain": "true", title: t("uncertain_hint")},
        t("uncertain_badge")));
    }
    return cell;
  }

  // One-tap correction (#17): a sentiment button or a category from the picker is sent at once;
  // feedback keeps it and every number on this page reads the corrected label on the next poll.
  async function sendCorrection(id, labels, control) {
    const focused = document.activeElement === control;  // a keyboard's place, kept through the redraw
    control.disabled = true;
    try {
      const answer = await session.api("feedback", "/v1/feedback/" + encodeURIComponent(id) + "/corrections",
        {method: "POST", json: labels});
      if (!answer.ok) throw new Error((answer.body && answer.body.detail) || String(answer.status));
      const done = answer.body;
      const c = cases.find((x) => x.id === id);
      if (c) Object.assign(c, {sentiment: done.sentiment, category: done.category, corrected: true});
      control.disabled = false;
      renderCases(true);
      if (focused) refocus(id, labels);
      staleUpTo = refreshes;
      refresh();
    } catch (error) {
      control.disabled = false;
      control.title = t("correct_failed") + ": " + error.message;
      control.classList.add("failed");
      if (focused) control.focus();
    }
  }

  // The same control in the case's redrawn row: the sentiment pressed, or the category picker.
  function refocus(id, labels) {
    const row = [...$("cases").querySelectorAll("tbody tr")].find((r) => r.dataset.id === id);
    const control = row && row.querySelector(labels.sentiment ? `[data-sentiment="${labels.sentiment}"]` : "select");
    if (control) control.focus();
  }

  function correctionCell(c) {
    const cell = el("td", {class: "correct"});
    const group = el("span", {class: "sentiments", role: "group", "aria-label": t("correct")});
    for (const value of ["negative", "neutral", "positive"]) {
      const button = el("button", {type: "button", "data-sentiment": value,
        class: value === c.sentiment ? "chosen" : "", "aria-pressed": String(value === c.sentiment)},
      labelsOf("sentiments")[value]);
      button.addEventListener("click", () => { if (value !== c.sentiment) sendCorrection(c.id, {sentiment: value}, button); });
      group.append(button);
    }
    const picker = el("select", {"aria-label": t("category"), "data-correct-category": c.id});
    for (const category of Object.keys((data && data.labels) || {})) {
      const option = el("option", {value: category}, label(category));
      if (category === c.category) option.selected = true;
      picker.append(option);
    }
    picker.addEventListener("change", () => { if (picker.value !== c.category) sendCorrection(c.id, {category: picker.value}, picker); });
    cell.append(group, " ", picker);
    if (c.corrected) cell.append(" ", el("span", {class: "corrected", "data-corrected": "true"}, "✎ " + t("corrected")));
    return cell;
  }

  // Rows are keyed by case and drawn again only when what they show changed: a row replaced by
  // the 2 s poll between a press and its release swallowed the click (the CI of stop 32 saw a
  // sentiment tap after a category correction never sent).
  function renderCases(force) {
    // A picker open in the table is not redrawn under the manager's finger by the 2 s poll
    // (a correction's own redraw is: it puts the focus back on the picker).
    if (!force && document.activeElement && document.activeElement.closest && document.activeElement.closest("#cases select")) return;
    const body = $("cases").querySelector("tbody");
    const drawn = new Map([...body.children].map((row) => [row.dataset.id, row]));
    $("open-count").textContent = String(cases.length);
    const now = Date.now() / 1000;
    const categories = Object.keys((data && data.labels) || {}).join();
    const rows = cases.map((c) => {
      const {age_seconds, ...shown} = c;  // the age is drawn from received_at each second
      const shows = JSON.stringify([lang, categories, storeZones[c.store_id] || "", shown]);
      const kept = drawn.get(c.id);
      if (kept && kept.dataset.shows === shows) {
        kept.classList.remove("fresh");
        return kept;
      }
      const row = el("tr", {"data-id": c.id, class: !firstLoad && !seen.has(c.id) ? "fresh" : ""});
      row.dataset.shows = shows;
      row.append(
        el("td", {"data-received": c.received_at, class: "age", title: storeTime(c.received_at, c.store_id)},
          duration(now - c.received_at)),
        el("td", {}, c.store_name), categoryCell(c),
        el("td", {class: "sev-" + c.severity}, labelsOf("severities")[c.severity] || c.severity),
        el("td", {}, labelsOf("statuses")[c.status] || c.status),
        session.openerCell(c.text || t("no_text"), () => window.VocCases.show(c.id)),
        correctionCell(c),
      );
      // The case behind the row, its timeline included (the Cases view): the row did nothing.
      // The text's button opens it; a click elsewhere on the row (not a correction) does too.
      row.classList.add("clickable");
      row.addEventListener("click", (event) => {
        if (!event.target.closest("select, button")) window.VocCases.show(c.id);
      });
      seen.add(c.id);
      return row;
    });
    // The rows of cases gone first, then only what moved is touched: a row above another
    // leaving does not take the rows below it out and back (which also drops a press).
    const kept = new Set(rows);
    for (const row of [...body.children]) if (!kept.has(row)) row.remove();
    rows.forEach((row, i) => { if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null); });
    firstLoad = false;
  }

  function renderStoreOptions() {
    const select = $("store");
    const known = new Set([...select.options].map((o) => o.value));
    for (const s of data.by_store) {
      if (!known.has(s.store_id)) select.append(el("option", {value: s.store_id}, s.store_name));
    }
  }

  function render() {
    renderTiles();
    renderTrend();
    renderStores();
    renderCategories();
    renderLoop();
    renderIssues();
    renderAdherence();
    renderStoreAlerts();
    renderTargets();
    renderOutreach();
    renderCases();
    renderStoreOptions();
  }

  function tickAges() {
    const now = Date.now() / 1000;
    for (const cell of document.querySelectorAll("td.age")) cell.textContent = duration(now - Number(cell.dataset.received));
  }

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    markLoginFields(false);
    const answer = await session.signIn($("email").value.trim(), $("password").value);
    $("password").value = "";
    if (!answer.ok) {
      $("login-error").textContent = t(answer.status === 429 ? "locked" : "bad_login");
      markLoginFields(true);
    }
  });
  // A refused sign-in marks both fields and points them at the error (neither is singled out:
  // the service does not say which was wrong); the next attempt clears them.
  function markLoginFields(failed) {
    for (const id of ["email", "password"]) {
      if (failed) {
        $(id).setAttribute("aria-invalid", "true");
        $(id).setAttribute("aria-describedby", "login-error");
      } else {
        $(id).removeAttribute("aria-invalid");
        $(id).removeAttribute("aria-describedby");
      }
    }
  }
  $("logout").addEventListener("click", () => session.signOut());

  async function loadStoreNames() {
    const answer = await session.api("notify", "/v1/admin/stores").catch(() => null);
    if (answer && answer.ok) {
      storeNames = Object.fromEntries(answer.body.map((s) => [s.id, s.name]));
      storeZones = Object.fromEntries(answer.body.map((s) => [s.id, s.timezone]));
    }
    renderWho();
  }

  // The store and period pickers and the live badge: nothing to pick or watch without a board.
  function showControls(shown) {
    for (const id of ["store", "period"]) $(id).closest("label").hidden = !shown;
    $("live").hidden = !shown;
    $("nav-cases").hidden = !shown;
  }

  function showSignedIn() {
    signedIn = true;
    refused = null;
    storeAlertsRefused = false;
    showControls(true);
    if (linkedStore && ![...$("store").options].some((o) => o.value === linkedStore)) {
      $("store").append(el("option", {value: linkedStore}, linkedStore));
    }
    if (linkedStore) $("store").value = linkedStore;
    $("login").hidden = true;
    $("nav").hidden = false;
    document.body.dataset.role = session.staff.role;
    renderWho();
    loadStoreNames();
    loadPlaybookTitles();
    refresh();
    checkWebhooks();
  }

  // What the Cases view (cases.js) names stores and categories by: the board's own tables.
  // Why notify disabled a webhook, in the reader's words: its two reasons (webhooks/dispatch.py),
  // a receiver's own error kept as it came; another text as written, marked English.
  function webhookReason(reason) {
    const text = reason || "—";
    const failing = /^every attempt failed for (\d+) h: (.*)$/s.exec(text);
    const words = text === "the receiver answered 410 Gone" ? t("wh_reason_gone")
      : failing ? said("wh_reason_failing", {hours: failing[1], error: failing[2]}) : null;
    return words ? el("span", {class: "why"}, words) : el("span", {class: "why", lang: "en"}, text);
  }

  window.VocBoard = {
    webhookReason,
    storeName: (id) => storeNames[id] || id,
    storeZone: (id) => storeZones[id] || null,
    categoryLabel: (category) => (category ? label(category) : "—"),
  };

  session.on("signed-in", showSignedIn);
  session.on("signed-out", (detail) => {
    signedIn = false;
    refused = null;
    disabledWebhooks = [];
    playbookTitles = {};
    renderWebhookNotice();
    showControls(true);
    data = null;
    storeNames = {};
    storeZones = {};
    $("board").hidden = true;
    $("no-access").hidden = true;
    $("store-refused").hidden = true;
    $("nav").hidden = true;
    $("who").hidden = true;
    $("login").hidden = false;
    delete document.body.dataset.loaded;
    delete document.body.dataset.role;
    $("login-error").textContent = detail.expired ? t("expired") : "";
  });
  $("lang").addEventListener("click", () => {
    lang = lang === "ko" ? "en" : "ko";
    localStorage.setItem("voc-dashboard-lang", lang);
    applyLanguage();
    // As in the staff app, the switch is the staff member's language: their pushes and the
    // alert titles notify words (the board's pattern alerts) follow it. The board is read again
    // once that is written; a refused write (an expired session) leaves the labels switched.
    // Writes go one after another, so quick taps end on the language shown.
    if (signedIn) {
      languageWritten = languageWritten.then(() => session.api("notify", "/v1/auth/language", {method: "PUT", json: {language: lang}}))
        .then((answer) => { if (answer.ok) refresh(); }, () => {});
    }
  });
  $("store").addEventListener("change", refresh);
  $("period").addEventListener("change", refresh);

  // The first render waits for the labels (session.js reads dashboard/i18n/); a session kept in
  // this tab is restored after it.
  session.labelsReady.then(() => {
    applyLanguage();
    if (!session.restore()) $("login").hidden = false;
    // Only while the board is the view shown (an admin section does not poll analytics).
    const boardShown = () => signedIn && !document.hidden && (document.body.dataset.view || "board") === "board";
    setInterval(() => { if (boardShown()) refresh(); }, POLL_MS);
    setInterval(() => { if (boardShown()) checkWebhooks(); }, WEBHOOK_CHECK_MS);
    setInterval(tickAges, 1000);
  });
})();
