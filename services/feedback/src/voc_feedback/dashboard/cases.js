// The console's Cases view, for every reader of feedback (managers, CX, the analyst): the items of
// the store and period picked in the header as feedback's `GET /v1/feedback` lists them (by
// status, 50 at a time, newest first), one item's case with its timeline (`GET /v1/feedback/{id}`),
// and the period's CSV export for those who may export. The service scopes and masks; this file
// shows what it answers, as text (textContent), never as HTML.
"use strict";
(function () {
  const session = window.VocConsole;
  const $ = (id) => document.getElementById(id);
  let lang = document.documentElement.lang === "en" ? "en" : "ko";
  let cursor = null;  // the list's next page, null at its end
  let asked = 0;  // the latest load: an older answer arriving late is dropped

  function t(key) { return session.label(lang, key); }
  function labelsOf(key) { return session.labelGroup(lang, key); }
  const el = session.el;
  function when(iso) { return iso ? new Date(iso).toLocaleString(session.dateLocale(lang)) : "—"; }
  function label(group, value) { return labelsOf(group)[value] || value || "—"; }
  function say(text, error) {
    const line = $("cases-result");
    line.textContent = text || "";
    line.classList.toggle("error", !!error);
  }

  // The header's store and period, and the view's status.
  function period() {
    const days = Number($("period").value);
    return {from: new Date(Date.now() - days * 86400000).toISOString(), to: new Date().toISOString()};
  }
  function filters() {
    const params = new URLSearchParams();
    if ($("store").value) params.set("store_id", $("store").value);
    if ($("case-status").value) params.set("status", $("case-status").value);
    params.set("from", period().from);
    return params;
  }

  async function load(more) {
    const mine = ++asked;
    const params = filters();
    params.set("limit", "50");
    if (more && cursor) params.set("cursor", cursor);
    const answer = await session.api("feedback", "/v1/feedback?" + params);
    if (mine !== asked) return;
    const body = $("case-list").querySelector("tbody");
    if (!more) { body.replaceChildren(); $("case-detail").hidden = true; }
    if (!answer.ok) {
      cursor = null;
      $("case-more").hidden = true;
      say((answer.body && answer.body.detail) || `HTTP ${answer.status}`, true);
      return;
    }
    say("");
    for (const item of answer.body.items) body.append(row(item));
    cursor = answer.body.next_cursor;
    $("case-more").hidden = !cursor;
    if (!body.children.length) say(t("none"));
  }

  function row(item) {
    const cls = item.classification || {};
    const tr = el("tr", {"data-id": item.id, "data-status": item.status, class: "clickable"});
    const ratings = item.ratings || {};
    tr.append(
      el("td", {}, when(item.received_at)),
      el("td", {}, window.VocBoard.storeName(item.store_id)),
      el("td", {}, window.VocBoard.categoryLabel(cls.category)),
      el("td", {}, label("sentiments", cls.sentiment)),
      el("td", {}, ratings.csat === null || ratings.csat === undefined ? "—" : `CSAT ${ratings.csat}`),
      el("td", {"data-status": item.status}, label("statuses", item.status)),
      session.openerCell(item.text || t("no_text"), () => open(item.id)));
    tr.addEventListener("click", (event) => { if (!event.target.closest("button")) open(item.id); });
    return tr;
  }

  // One case: what was said, how it was classified, the survey, and every step with who and when.
  async function open(id) {
    const answer = await session.api("feedback", `/v1/feedback/${encodeURIComponent(id)}`);
    const box = $("case-detail");
    if (!answer.ok) { say((answer.body && answer.body.detail) || `HTTP ${answer.status}`, true); return; }
    const item = answer.body;
    const cls = item.classification || {};
    box.dataset.id = item.id;
    box.querySelector(".case-text").textContent = item.text || t("no_text");
    const facts = box.querySelector(".case-facts");
    facts.replaceChildren();
    const survey = item.follow_up;
    for (const [key, value] of [
      ["store", window.VocBoard.storeName(item.store_id)],
      ["category", window.VocBoard.categoryLabel(cls.category)],
      ["severity", label("severities", cls.severity)],
      ["status", label("statuses", item.status)],
      ["channel", label("channels", item.channel)],
      ["follow_up", survey ? (survey.answered_at ? `CSAT ${survey.csat}` : t("follow_up_waiting")) : "—"],
    ]) facts.append(el("dt", {}, t(key)), el("dd", {"data-key": key}, value));
    const steps = box.querySelector(".case-timeline");
    steps.replaceChildren();
    for (const step of item.timeline || []) {
      const detail = step.detail || {};
      const said = [detail.outcome ? label("outcomes", detail.outcome) : null, detail.note, detail.comment,
        detail.follow_up, detail.csat !== undefined ? `CSAT ${detail.csat}` : null].filter(Boolean);
      steps.append(el("li", {"data-kind": step.kind},
        [when(step.at), label("timeline_kinds", step.kind), step.actor, ...said].filter(Boolean).join(" · ")));
    }
    box.hidden = false;
    box.scrollIntoView({block: "nearest"});
    // Focus follows to the case (it was left on a row no longer shown, or on <body>).
    box.querySelector("h2").focus({preventScroll: true});
  }

  // The CSV of the period (feedback's export: both ends, the store picked), saved by the browser.
  async function exportCsv() {
    const params = filters();
    params.delete("status");
    params.set("to", period().to);
    const answer = await session.api("feedback", "/v1/feedback/export.csv?" + params, {blob: true});
    if (!answer.ok) { say((answer.body && answer.body.detail) || `HTTP ${answer.status}`, true); return; }
    const link = el("a", {href: URL.createObjectURL(answer.blob), download: `feedback-${params.get("from").slice(0, 10)}.csv`});
    document.body.append(link);
    link.click();
    link.remove();
    say(t("exported"));
  }

  // The header's pickers move the list while it is shown.
  for (const id of ["store", "period"]) $(id).addEventListener("change", () => { if (!$("view-cases").hidden) load(false); });
  $("case-status").addEventListener("change", () => load(false));
  $("case-more").addEventListener("click", () => load(true));
  $("case-export").addEventListener("click", exportCsv);
  document.addEventListener("voc-language", (event) => { lang = event.detail; });

  // From the board's open cases: the Cases view with that case open.
  async function show(id) {
    window.VocViews.show("cases", {load: false});
    await load(false);
    await open(id);
  }

  window.VocCases = {load: () => load(false), open, show};
})();
