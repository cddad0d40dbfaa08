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
  let listed = [];  // the items shown in the list, drawn again in the other language
  let shown = null;  // the case open below it, likewise
  let staffById = {};  // notify's directory as this reader may read it: who took a case's steps
  let staffRead = null;  // its reading, once a sign-in (null: not read, or to be read again)

  function t(key) { return session.label(lang, key); }
  function labelsOf(key) { return session.labelGroup(lang, key); }
  const el = session.el;
  // A case's times in its store's time zone (notify's directory, as the board reads it), else
  // the reader's; the zone is always said (session.formatTime).
  function when(at, storeId) { return session.formatTime(at, lang, window.VocBoard.storeZone(storeId)); }
  function label(group, value) { return labelsOf(group)[value] || value || "—"; }
  const fill = session.fill;

  // The fixed English sentences the services write on a follow-up step (feedback's events.py
  // FOLLOW_UP_NOTES, notify's follow_ups.py reasons) are said in the reader's words; a note
  // that is not one of them (what a person wrote, a mail server's answer) is shown as written.
  const FOLLOW_UP_NOTES = {
    sent: "follow-up sent by {channel}",
    retrying: "follow-up by {channel} not delivered yet: {reason}; trying again",
    failed: "follow-up by {channel} failed: {reason}",
    not_sent: "follow-up not sent: {reason}",
    held: "follow-up held: {reason}; sent when they end",
    delivered: "follow-up by {channel} delivered",
    undelivered: "follow-up by {channel} not delivered: {reason}",
    not_requested: "follow-up not asked: {reason}",  // feedback's own (cases.no_follow_up_reason)
  };
  // Before any channel was chosen (events.py FOLLOW_UP_NOTES_NO_CHANNEL): no "by none".
  const FOLLOW_UP_NOTES_NO_CHANNEL = {
    retrying: "follow-up not sent yet: {reason}; trying again",
    failed: "follow-up failed: {reason}",
  };
  // notify's reasons, whole or as the start of a longer one: [its English, the label's key].
  const FOLLOW_UP_REASONS = [
    ["store quiet hours", "quiet_hours"],
    ["the link expired before it could be sent", "link_expired"],
    ["no channel configured", "no_channel"],
    ["no configured channel reaches the customer", "no_reachable_channel"],
    ["no customer on record to ask for consent (anonymous feedback)", "anonymous"],
    ["the customer is not on record", "not_on_record"],
    ["the customer was erased", "erased"],
    ["the customer opted out of contact (contact_consent false)", "opted_out"],
    ["the worker stopped while sending; not sent again (at most one message per case)", "cut_off"],
    ["the customer has not consented to contact (contact_consent false)", "no_consent"],  // before 2026-12-07
    ["gave up, the link expires before another attempt", "gave_up"],
    ["praise is shared with the team, there was nothing to put right", "fyi"],
    ["resolved as no action needed", "no_action"],
  ];
  const FOLLOW_UP_ON_LATEST = "asked once for the alert, with its latest feedback";
  function reasonText(reason) {
    const known = FOLLOW_UP_REASONS.find(([english]) => reason === english || reason.startsWith(english + " ")
      || reason.startsWith(english + ":"));
    const said = known && labelsOf("follow_up_reasons")[known[1]];
    return said ? said + reason.slice(known[0].length) : reason;
  }
  function stepNote(step, detail) {
    const note = detail.note;
    if (typeof note !== "string" || !step.kind.startsWith("follow_up_")) return note;
    const channel = detail.channel || "", reason = detail.reason || "";
    const unchosen = (channel === "" || channel === "none") && detail.outcome in FOLLOW_UP_NOTES_NO_CHANNEL;
    const english = (unchosen ? FOLLOW_UP_NOTES_NO_CHANNEL : FOLLOW_UP_NOTES)[detail.outcome];
    const template = labelsOf(unchosen ? "follow_up_notes_no_channel" : "follow_up_notes")[detail.outcome];
    if (!english || !template || note !== fill(english, {channel, reason})) return note;
    return fill(template, {channel: channel ? label("channels", channel) : "", reason: reasonText(reason)});
  }
  // Where the customer's follow-up stands: answered, else notify's last word on the message
  // (held, not sent, failed, retrying), else sent and awaiting an answer, else not sent yet.
  function followUpState(item, survey) {
    if (survey.answered_at) return `CSAT ${survey.csat}`;
    const SENDING = ["follow_up_sent", "follow_up_held", "follow_up_not_sent", "follow_up_failed", "follow_up_retrying",
      "follow_up_delivered", "follow_up_undelivered"];
    const last = (item.timeline || []).filter((step) => SENDING.includes(step.kind)).at(-1);
    if (!last) return t("follow_up_scheduled");
    if (last.kind === "follow_up_sent" || last.kind === "follow_up_delivered") return t("follow_up_waiting");
    const next = (last.detail || {}).next_attempt_at;
    const said = label("timeline_kinds", last.kind);
    return typeof next === "number" ? `${said} · ${fill(t("next_attempt"), {when: when(next, item.store_id)})}` : said;
  }
  function followUpNote(text) {
    return text === FOLLOW_UP_ON_LATEST && lang !== "en" ? t("follow_up_on_latest") : text;
  }
  // Who took a step, in words: the one table of every actor the services write on a timeline
  // (feedback's intake "api_key:<prefix>", cases and follow_ups "feedback" and "customer",
  // events "notify" and "staff:<id>", corrections "staff:<id>" or "admin", grpc_server
  // "staff:<id>" or "grpc"). A staff member by name and role where this reader's directory has
  // them (their stores' staff; all for cx_admin), else as "staff member" (the analyst reads no
  // directory). An actor not in the table is shown as written.
  const ACTOR_WORDS = {customer: "customer", notify: "system", feedback: "system", grpc: "system",
    api_key: "store_app", admin: "admin"};
  function actorText(actor) {
    if (!actor) return null;
    const [kind, ...rest] = actor.split(":");
    if (kind === "staff") {
      const member = staffById[rest.join(":")];
      return member ? fill(t("staff_with_role"), {name: member.name, role: label("roles", member.role)})
        : labelsOf("actors").staff;
    }
    return ACTOR_WORDS[kind] ? labelsOf("actors")[ACTOR_WORDS[kind]] : actor;
  }
  // Read once a sign-in; a refusal (403: a role without the directory) is final, a failure is
  // asked again with the next case.
  // An answer that comes after a sign-out (or another sign-in) is dropped: it is the last
  // reader's directory.
  function readStaff() {
    if (!staffRead) {
      const reading = session.api("notify", "/v1/admin/staff").then((answer) => {
        if (staffRead !== reading) return;
        if (answer.ok) staffById = Object.fromEntries(answer.body.staff.map((s) => [s.id, s]));
        else if (answer.status !== 403) staffRead = null;
      }, () => { if (staffRead === reading) staffRead = null; });
      staffRead = reading;
    }
    return staffRead;
  }
  for (const event of ["signed-in", "signed-out"]) session.on(event, () => { staffById = {}; staffRead = null; });

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
    if (!more) { body.replaceChildren(); $("case-detail").hidden = true; listed = []; shown = null; }
    if (!answer.ok) {
      cursor = null;
      $("case-more").hidden = true;
      say((answer.body && answer.body.detail) || `HTTP ${answer.status}`, true);
      return;
    }
    say("");
    listed.push(...answer.body.items);
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
      el("td", {}, when(item.received_at, item.store_id)),
      el("td", {}, window.VocBoard.storeName(item.store_id)),
      el("td", {}, window.VocBoard.categoryLabel(cls.category)),
      el("td", {}, label("sentiments", cls.sentiment)),
      el("td", {}, ratings.csat === null || ratings.csat === undefined ? "—" : `CSAT ${ratings.csat}`),
      statusCell(item),
      session.openerCell(item.text || t("no_text"), () => open(item.id)));
    tr.addEventListener("click", (event) => { if (!event.target.closest("button")) open(item.id); });
    return tr;
  }

  // The status, and "FYI" for an item on an info plan (praise: the staff app's chip): listed
  // here with all feedback, and not among the board's open cases (feedback's cases.OPEN_CASE).
  function statusCell(item) {
    const cell = el("td", {"data-status": item.status}, label("statuses", item.status));
    if (item.priority === "info") {
      cell.append(" ", el("span", {class: "fyi", "data-priority": "info"}, label("priorities", "info")));
    }
    return cell;
  }

  function caseButton(key, id) {
    const button = el("button", {type: "button", class: "case-link", "data-opens": id}, t(key));
    button.addEventListener("click", () => open(id));
    return button;
  }

  // One case: what was said, how it was classified, the survey, and every step with who and when.
  async function open(id) {
    const [answer] = await Promise.all([session.api("feedback", `/v1/feedback/${encodeURIComponent(id)}`), readStaff()]);
    const box = $("case-detail");
    if (!answer.ok) { say((answer.body && answer.body.detail) || `HTTP ${answer.status}`, true); return; }
    shown = answer.body;
    draw(shown);
    box.hidden = false;
    box.scrollIntoView({block: "nearest"});
    // Focus follows to the case (it was left on a row no longer shown, or on <body>).
    box.querySelector("h2").focus({preventScroll: true});
  }

  function draw(item) {
    const box = $("case-detail");
    const cls = item.classification || {};
    box.dataset.id = item.id;
    box.querySelector(".case-text").textContent = item.text || t("no_text");
    const facts = box.querySelector(".case-facts");
    facts.replaceChildren();
    const survey = item.follow_up;
    const zone = window.VocBoard.storeZone(item.store_id);
    for (const [key, value] of [
      ["store", window.VocBoard.storeName(item.store_id)],
      ["category", window.VocBoard.categoryLabel(cls.category)],
      ["severity", label("severities", cls.severity)],
      ["status", label("statuses", item.status)],
      ["priority", item.priority ? label("priorities", item.priority) : "—"],
      ["channel", label("channels", item.channel)],
      ["follow_up", survey ? followUpState(item, survey) : "—"],
      ["time_zone", zone ? fill(t("zone_of_store"), {zone}) : fill(t("zone_of_viewer"), {zone: session.viewerZone()})],
    ]) facts.append(el("dt", {}, t(key)), el("dd", {"data-key": key}, value));
    const steps = box.querySelector(".case-timeline");
    steps.replaceChildren();
    for (const step of item.timeline || []) {
      const detail = step.detail || {};
      // A follow-up step's outcome (sent, failed…) is its kind already; a resolution's is the staff app's words.
      const outcome = detail.outcome && !step.kind.startsWith("follow_up_") ? label("outcomes", detail.outcome) : null;
      const said = [outcome, stepNote(step, detail), detail.comment,
        detail.follow_up ? followUpNote(detail.follow_up) : null,
        detail.csat !== undefined ? `CSAT ${detail.csat}` : null,
        typeof detail.revisit_intent === "boolean" ? t(detail.revisit_intent ? "revisit_yes" : "revisit_no") : null,
        // A held or retried follow-up says when it goes out (notify's next attempt), not only that it will.
        step.kind.startsWith("follow_up_") && typeof detail.next_attempt_at === "number"
          ? fill(t("next_attempt"), {when: when(detail.next_attempt_at, item.store_id)}) : null,
      ].filter(Boolean);
      const line = el("li", {"data-kind": step.kind},
        [when(step.at, item.store_id), label("timeline_kinds", step.kind), actorText(step.actor), ...said]
          .filter(Boolean).join(" · "));
      // A reopening answer is a case of its own (its words, its alert): one press away.
      if (step.kind === "reopened" && detail.feedback_id) line.append(" ", caseButton("open_reopening", detail.feedback_id));
      steps.append(line);
    }
    if (item.reopens_id) {
      const reopens = el("li", {"data-kind": "reopens"}, t("reopens"));
      reopens.append(" ", caseButton("open_original", item.reopens_id));
      steps.prepend(reopens);
    }
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
  // The other language: the list and the open case drawn again from what was read (no request).
  document.addEventListener("voc-language", (event) => {
    lang = event.detail;
    const body = $("case-list").querySelector("tbody");
    if (listed.length) body.replaceChildren(...listed.map(row));
    if (shown && !$("case-detail").hidden) draw(shown);
  });

  // From the board's open cases: the Cases view with that case open.
  async function show(id) {
    window.VocViews.show("cases", {load: false});
    await load(false);
    await open(id);
  }

  window.VocCases = {load: () => load(false), open, show};
})();
