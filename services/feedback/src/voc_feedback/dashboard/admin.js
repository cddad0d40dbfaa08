// The console's Admin sections for a cx_admin: directory (notify), API keys (feedback), playbooks
// and taxonomy (actions) and webhooks (notify). Each is a client of the owning service's REST API with the
// staff member's token (session.js): the service validates, scopes, audits and refuses; this file
// only shows what it answers (a refusal's `detail` and `errors`, by line or file/line/field).
// Everything shown is set as text (textContent), never as HTML.
"use strict";
(function () {
  const session = window.VocConsole;
  const ROLES = ["staff", "shift_lead", "store_manager", "area_manager", "cx_admin", "analyst"];
  const VIEWS = ["cases", "directory", "keys", "playbooks", "taxonomy", "webhooks"];
  const $ = (id) => document.getElementById(id);
  let lang = document.documentElement.lang === "en" ? "en" : "ko";
  let view = "board";
  let shiftsOf = null;  // the staff member whose shifts are shown
  let storeRows = [];  // notify's stores as last listed (the shifts' time zone)
  let staffRows = [];
  let playbookFiles = null;  // the files last validated, published as they are

  function t(key) { return session.label(lang, key); }
  function labelsOf(key) { return session.labelGroup(lang, key); }
  const el = session.el;
  function button(key, onClick, attrs) {
    const node = el("button", {type: "button", ...(attrs || {})}, t(key));
    node.addEventListener("click", onClick);
    return node;
  }
  function cells(row, values) { for (const v of values) row.append(v instanceof Node ? v : el("td", {}, v ?? "—")); }
  function td(...nodes) { const cell = el("td", {}); cell.append(...nodes); return cell; }
  function when(iso) { return iso ? new Date(typeof iso === "number" ? iso * 1000 : iso).toLocaleString(session.dateLocale(lang)) : "—"; }
  function roleName(role) { return labelsOf("roles")[role] || role; }
  function list(value) { return String(value || "").split(/[;,]/).map((s) => s.trim()).filter(Boolean); }

  // A result line: the answer's own words on a refusal (problem+json `detail`, field errors).
  function say(node, answer, okText) {
    node.classList.toggle("error", !answer.ok);
    if (answer.ok) { node.textContent = okText; return; }
    const body = answer.body || {};
    const fields = (body.errors || []).filter((e) => e.field && e.row === undefined && e.file === undefined)
      .map((e) => `${e.field}: ${e.message}`);
    node.textContent = [body.detail || `HTTP ${answer.status}`, ...fields].join(" · ");
  }
  function result(container) { return container.querySelector(".result"); }
  function showSecret(box, secret) {
    box.hidden = false;
    box.querySelector(".secret").textContent = secret;
  }

  // A section's table as the owning service lists it now: GET `path` at `service` with the staff
  // token, the table's rows emptied, then (only on a 2xx answer) `fill(answer body, tbody)` adds
  // its rows; a refusal leaves it empty. Emptying and filling stay in one step after the answer,
  // so two loads of one table never mix their rows. Resolves to whether the answer was 2xx.
  async function loadTable(id, service, path, fill) {
    const answer = await session.api(service, path);
    const body = $(id).querySelector("tbody");
    body.replaceChildren();
    if (answer.ok) fill(answer.body, body);
    return answer.ok;
  }

  // Asks before a destructive action: an in-page modal dialog (role alertdialog, focus on
  // Cancel, Escape cancels); resolves true only for Confirm.
  function confirmed(key, id) {
    const box = $("confirm");
    box.querySelector(".question").textContent = t(key).replace("{id}", id);
    box.dataset.action = key;
    box.returnValue = "";
    box.showModal();
    box.querySelector("button.cancel").focus();
    return new Promise((resolve) => box.addEventListener("close", () => resolve(box.returnValue === "yes"), {once: true}));
  }
  $("confirm").querySelector("button.ok").addEventListener("click", () => $("confirm").close("yes"));
  $("confirm").querySelector("button.cancel").addEventListener("click", () => $("confirm").close("no"));

  // --- navigation -------------------------------------------------------------------------------
  function show(next, options) {
    view = next;
    // "cases" keeps the header's store and period pickers (its filters); the admin sections hide them.
    document.body.dataset.view = next === "board" || next === "cases" ? next : "admin";
    $("admin").hidden = next === "board";
    if (next === "board" && document.body.dataset.loaded === "true") $("board").hidden = false;
    if (next !== "board") $("board").hidden = true;
    for (const v of VIEWS) $("view-" + v).hidden = v !== next;
    // The view shown is said, not only coloured; focus stays on the nav button pressed.
    for (const b of document.querySelectorAll("#nav button")) {
      b.classList.toggle("active", b.dataset.view === next);
      if (b.dataset.view === next) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    }
    const load = {cases: () => window.VocCases.load(), directory: loadDirectory, keys: loadKeys,
      playbooks: loadPlaybooks, taxonomy: loadTaxonomy, webhooks: loadWebhooks}[next];
    if (load && (!options || options.load !== false)) load();
  }
  window.VocViews = {show};
  for (const b of document.querySelectorAll("#nav button")) b.addEventListener("click", () => show(b.dataset.view));

  // --- directory (notify) ----------------------------------------------------------------------
  async function loadDirectory() {
    await Promise.all([loadStaff(), loadStores()]);
    if (shiftsOf) loadShifts(shiftsOf);
  }

  async function loadStaff() {
    await loadTable("staff-table", "notify", "/v1/admin/staff", (data, body) => {
      staffRows = data.staff;
      for (const s of staffRows) {
        const row = el("tr", {"data-id": s.id, "data-active": String(s.active)});
        const actions = td(button("edit", () => editStaff(s), {class: "edit cx-only"}), " ",
          button("shifts", () => loadShifts(s.id), {class: "shifts"}), " ",
          button(s.active ? "deactivate" : "activate", () => setActive(s.id, !s.active), {class: "toggle cx-only"}));
        cells(row, [s.id, s.name, s.email, roleName(s.role), (s.store_ids || []).join(", ") +
          (s.area_id ? ` (${s.area_id})` : "") + (s.department_id ? ` · ${s.department_id}` : ""),
          t(s.active ? "active" : "inactive"), actions]);
        body.append(row);
      }
    });
  }

  function editStaff(s) {
    const form = $("staff-form");
    for (const name of ["id", "name", "email", "area_id", "department_id"]) form.elements[name].value = s[name] || "";
    form.elements.role.value = s.role;
    form.elements.store_ids.value = (s.store_ids || []).join(";");
    form.elements.active.checked = s.active;
    form.elements.language.value = s.language || "";
    form.elements.password.value = "";  // blank keeps it; typing one resets it
    form.elements.name.focus();
  }

  $("staff-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target.elements;
    const member = {id: f.id.value.trim(), name: f.name.value.trim(), email: f.email.value.trim(),
      role: f.role.value, store_ids: list(f.store_ids.value),
      area_id: f.area_id.value.trim() || null, active: f.active.checked,
      department_id: f.department_id.value.trim() || null};
    // The password only when typed: someone new needs one (the service says so), an edit without
    // one keeps theirs.
    if (f.password.value) member.password = f.password.value;
    if (f.language.value) member.language = f.language.value;
    const answer = await session.api("notify", "/v1/admin/staff", {method: "PUT", json: [member]});
    say(result(event.target), answer, t("saved"));
    if (answer.ok) { event.target.reset(); loadStaff(); }
  });

  async function setActive(id, active) {
    if (!active && !(await confirmed("ask_deactivate", id))) return;
    const answer = await session.api("notify", `/v1/admin/staff/${encodeURIComponent(id)}/${active ? "activate" : "deactivate"}`,
      {method: "POST"});
    say(result($("staff-form")), answer, t("saved"));
    loadStaff();
  }

  async function loadShifts(id) {
    shiftsOf = id;
    const box = $("shifts");
    const answer = await session.api("notify", `/v1/admin/staff/${encodeURIComponent(id)}/shifts`);
    const body = box.querySelector("tbody");
    body.replaceChildren();
    const whose = box.querySelector(".for");
    delete whose.dataset.i18n;  // from here it names the staff member, in no language
    whose.classList.remove("hint");
    const member = staffRows.find((s) => s.id === id);
    // Their name and the clock the shifts keep: the times are the store's local time.
    const zone = member && (storeRows.find((s) => (member.store_ids || []).includes(s.id)) || {}).timezone;
    whose.textContent = (member ? `${member.name} (${id})` : id) + (zone ? ` · ${t("shift_zone").replace("{zone}", zone)}` : "");
    $("shift-form").hidden = !answer.ok;
    if (!answer.ok) { say(result(box), answer, ""); return; }
    result(box).textContent = answer.body.shifts.length ? "" : t("always_on");
    answer.body.shifts.forEach((s, i) => {
      const row = el("tr", {});
      // A shift that ends at or before its start runs into the next day (18:00–09:00).
      const ends = s.ends <= s.starts ? `${s.ends} (${t("next_day")})` : s.ends;
      cells(row, [labelsOf("weekdays")[s.weekday], s.starts, ends,
        td(button("remove", () => putShifts(answer.body.shifts.filter((_, j) => j !== i))))]);
      body.append(row);
    });
    box.dataset.shifts = JSON.stringify(answer.body.shifts.map(({weekday, starts, ends}) => ({weekday, starts, ends})));
  }

  async function putShifts(shifts) {
    const box = $("shifts");
    const answer = await session.api("notify", `/v1/admin/staff/${encodeURIComponent(shiftsOf)}/shifts`,
      {method: "PUT", json: shifts.map(({weekday, starts, ends}) => ({weekday, starts, ends}))});
    if (!answer.ok) { say(result(box), answer, ""); return; }
    await loadShifts(shiftsOf);
    say(result(box), answer, t("saved"));
  }

  $("shift-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target.elements;
    const current = JSON.parse($("shifts").dataset.shifts || "[]");
    // No shifts means paged at any hour; the first one limits the pages to the shifts entered,
    // which a manager adding "tonight's" shift did not expect: asked first.
    if (!current.length && !(await confirmed("ask_first_shift", shiftsOf))) return;
    putShifts([...current, {weekday: Number(f.weekday.value), starts: f.starts.value, ends: f.ends.value}]);
  });

  $("import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const file = form.elements.file.files[0];
    if (!file) return;
    const answer = await session.api("notify", "/v1/admin/staff:import", {method: "POST", text: await file.text(), type: "text/csv"});
    const table = form.querySelector("table.refused");
    const body = table.querySelector("tbody");
    body.replaceChildren();
    table.hidden = answer.ok || !(answer.body && answer.body.errors && answer.body.errors.length);
    if (answer.ok) {
      result(form).classList.remove("error");
      result(form).textContent = `${t("imported")}: ${answer.body.imported} (+${answer.body.created})`;
      loadStaff();
      return;
    }
    say(result(form), answer, "");
    result(form).textContent = `${t("refused")}: ${result(form).textContent}`;
    for (const e of (answer.body && answer.body.errors) || []) {
      const row = el("tr", {"data-line": String(e.row)});
      cells(row, [e.row, e.field, e.message]);
      body.append(row);
    }
  });

  async function loadStores() {
    await loadTable("store-table", "notify", "/v1/admin/stores", (data, body) => {
      storeRows = data;
      for (const s of data) {
        const row = el("tr", {"data-id": s.id});
        cells(row, [s.id, s.name, s.area_id, s.timezone, s.language]);
        body.append(row);
      }
    });
  }

  // A store lives in notify's directory (routing, quiet hours) and feedback's store -> area
  // list (analytics): the console writes both, as the demo seeding does.
  $("store-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target.elements;
    const store = {id: f.id.value.trim(), name: f.name.value.trim(), area_id: f.area_id.value.trim() || null,
      timezone: f.timezone.value.trim(), language: f.language.value};
    const box = $("store-form").parentElement;
    let answer = await session.api("notify", "/v1/admin/stores", {method: "PUT", json: [store]});
    if (answer.ok) answer = await session.api("feedback", "/v1/admin/stores",
      {method: "PUT", json: [{id: store.id, name: store.name, area_id: store.area_id}]});
    say(result(box), answer, t("saved"));
    if (answer.ok) { event.target.reset(); loadStores(); }
  });

  // --- API keys (feedback) ----------------------------------------------------------------------
  async function loadKeys() {
    await loadTable("key-table", "feedback", "/v1/admin/api-keys", (data, body) => {
      for (const k of data) {
        const state = k.revoked_at ? "revoked" : (k.expires_at ? "expires" : "active");
        const row = el("tr", {"data-id": k.id, "data-state": state});
        const actions = k.revoked_at ? td() : td(button("rotate", () => rotateKey(k.id), {class: "rotate"}), " ",
          button("revoke", () => revokeKey(k.id), {class: "revoke"}));
        cells(row, [k.id, k.name, k.store_ids.join(", "), k.prefix,
          state === "expires" ? `${t("expires")} ${when(k.expires_at)}` : t(state), actions]);
        body.append(row);
      }
    });
  }

  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target.elements;
    const answer = await session.api("feedback", "/v1/admin/api-keys",
      {method: "POST", json: {name: f.name.value.trim(), store_ids: list(f.store_ids.value)}});
    say(result($("key-table").parentElement), answer, "");
    if (answer.ok) { showSecret($("key-secret"), answer.body.api_key); event.target.reset(); loadKeys(); }
  });

  async function rotateKey(id) {
    if (!(await confirmed("ask_rotate_key", id))) return;
    const grace = Number($("key-grace").value || 0);
    const answer = await session.api("feedback", `/v1/admin/api-keys/${encodeURIComponent(id)}/rotate`,
      {method: "POST", json: {grace_seconds: grace}});
    say(result($("key-table").parentElement), answer, "");
    if (answer.ok) showSecret($("key-secret"), answer.body.api_key);
    loadKeys();
  }

  async function revokeKey(id) {
    if (!(await confirmed("ask_revoke", id))) return;
    const answer = await session.api("feedback", `/v1/admin/api-keys/${encodeURIComponent(id)}`, {method: "DELETE"});
    say(result($("key-table").parentElement), answer, t("revoked"));
    $("key-secret").hidden = true;
    loadKeys();
  }

  // --- playbooks (actions) ----------------------------------------------------------------------
  async function loadPlaybooks() {
    await loadTable("playbook-table", "actions", "/v1/playbooks", (data, body) => {
      for (const p of data.playbooks) {
        const row = el("tr", {"data-id": p.id, "data-version": String(p.version)});
        const title = p.title ? (p.title[lang] || p.title.en || p.title.ko) : "";
        cells(row, [p.id, p.version, labelsOf("playbook_kinds")[p.kind] || p.kind, title, p.source_file,
          // Only where an earlier version exists (the service still decides, 409 otherwise).
          p.version > 1 ? td(button("rollback", () => rollBack(p.id), {class: "rollback"})) : td()]);
        body.append(row);
      }
    });
  }

  // A refused answer's problems in the form's problems table, one row each: `columns` are the
  // problem's fields shown (each also a data- attribute of the row), its message last.
  function showProblems(formId, answer, columns) {
    const table = $(formId).querySelector("table.problems");
    const body = table.querySelector("tbody");
    body.replaceChildren();
    const problems = (answer.body && answer.body.errors) || [];
    table.hidden = answer.ok || !problems.length;
    for (const p of problems) {
      const row = el("tr", Object.fromEntries(columns.map((c) => ["data-" + c, String(p[c] ?? "")])));
      cells(row, [...columns.map((c) => p[c]), p.message]);
      body.append(row);
    }
  }

  const showPlaybookProblems = (answer) => showProblems("playbook-form", answer, ["file", "line", "field"]);
  const showTaxonomyProblems = (answer) => showProblems("taxonomy-form", answer, ["field"]);

  async function readFiles(input) {
    const files = {};
    for (const file of input.files) files[file.name] = await file.text();
    return files;
  }

  $("playbook-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const files = await readFiles(form.elements.files);
    const answer = await session.api("actions", "/v1/playbooks:validate", {method: "POST", json: {files}});
    showPlaybookProblems(answer);
    playbookFiles = answer.ok ? files : null;
    form.querySelector("button.publish").disabled = !answer.ok;
    say(result(form), answer, answer.ok
      ? `${t("valid")}: ${answer.body.playbooks.map((p) => `${p.id} v${p.version}`).join(", ")}` : "");
  });
  $("playbook-form").elements.files.addEventListener("change", () => {
    playbookFiles = null;
    $("playbook-form").querySelector("button.publish").disabled = true;
  });

  $("playbook-form").querySelector("button.publish").addEventListener("click", async () => {
    const form = $("playbook-form");
    if (!playbookFiles) return;
    const answer = await session.api("actions", "/v1/playbooks", {method: "PUT", json: {files: playbookFiles}});
    showPlaybookProblems(answer);
    say(result(form), answer, answer.ok
      ? `${t("published")}: ${answer.body.published.map((p) => `${p.id} v${p.version}`).join(", ")}` : "");
    form.querySelector("button.publish").disabled = true;
    playbookFiles = null;
    loadPlaybooks();
  });

  async function rollBack(id) {
    if (!(await confirmed("ask_rollback", id))) return;
    const answer = await session.api("actions", `/v1/playbooks/${encodeURIComponent(id)}/rollback`, {method: "POST"});
    say(result($("playbook-table").parentElement), answer, answer.ok
      ? `${t("rolled_back")}: ${answer.body.published.map((p) => `${p.id} v${p.version}`).join(", ")}` : "");
    loadPlaybooks();
  }

  // --- taxonomy (actions, #20 §3) ---------------------------------------------------------------
  // The draft is the published document in a textarea (JSON; YAML may be pasted: the service reads
  // both). The form and the Retire buttons edit the draft; the service validates and publishes it.
  let taxonomyChecked = null;  // the body last validated, published as it is

  function asDocument(published) {
    const categories = {};
    for (const c of published.categories) {
      const entry = {ko: c.ko, en: c.en, severity: c.severity};
      if (c.parent) entry.parent = c.parent;
      if (c.department) entry.department = c.department;
      if (c.retired) entry.retired = true;
      categories[c.id] = entry;
    }
    const departments = {};
    for (const d of published.departments) departments[d.id] = {ko: d.ko, en: d.en};
    return {departments, categories};
  }
  function draft() { return JSON.parse($("taxonomy-form").elements.document.value); }
  function setDraft(doc) {
    $("taxonomy-form").elements.document.value = JSON.stringify(doc, null, 2);
    taxonomyChecked = null;
    $("taxonomy-form").querySelector("button.publish").disabled = true;
    showDraft(doc);
  }
  // A published active category the draft retires reads "Retired (draft)" until it is published
  // (or the draft is reloaded); its Retire button is spent.
  function showDraft(doc) {
    for (const row of $("taxonomy-table").querySelectorAll("tbody tr[data-retired=false]")) {
      const entry = (doc.categories || {})[row.dataset.id];
      const retiring = Boolean(entry && entry.retired);
      row.dataset.draft = retiring ? "retired" : "";
      row.querySelector("td.status").textContent = t(retiring ? "retired_draft" : "active");
      const button = row.querySelector("button.retire");
      if (button) button.disabled = retiring;
    }
  }

  async function loadTaxonomy() {
    await loadTable("taxonomy-table", "actions", "/v1/taxonomy", (data, body) => {
      $("view-taxonomy").querySelector("[data-testid=taxonomy-version]").textContent =
        `${t("tx_version")}: ${data.version}`;
      for (const c of data.categories) {
        const row = el("tr", {"data-id": c.id, "data-retired": String(c.retired)});
        cells(row, [c.id, c.ko, c.en, c.parent, labelsOf("severities")[c.severity] || c.severity, c.department,
          t(c.retired ? "retired" : "active"),
          c.retired ? td() : td(button("retire", () => retire(c.id), {class: "retire"}))]);
        row.children[6].classList.add("status");
        body.append(row);
      }
      setDraft(asDocument(data));
    });
  }

  function retire(id) {
    const doc = draft();
    if (doc.categories[id]) doc.categories[id].retired = true;
    setDraft(doc);
  }

  $("category-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const doc = draft();
    const entry = {...(doc.categories[form.elements.id.value] || {})};
    for (const name of ["ko", "en", "parent", "severity", "department"]) {
      const value = form.elements[name].value.trim();
      if (value) entry[name] = value; else if (name !== "ko" && name !== "en") delete entry[name];
    }
    doc.categories[form.elements.id.value] = entry;
    setDraft(doc);
  });

  async function taxonomyBody() {
    const form = $("taxonomy-form");
    return {yaml: form.elements.document.value, playbooks: await readFiles(form.elements.playbooks)};
  }

  $("taxonomy-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const sent = await taxonomyBody();
    const answer = await session.api("actions", "/v1/taxonomy:validate", {method: "POST", json: sent});
    showTaxonomyProblems(answer);
    taxonomyChecked = answer.ok ? sent : null;
    form.querySelector("button.publish").disabled = !answer.ok;
    say(result(form), answer, answer.ok ? `${t("valid")}: ${t("tx_version")} ${answer.body.version}` : "");
  });
  $("taxonomy-form").elements.document.addEventListener("input", () => {
    taxonomyChecked = null;
    $("taxonomy-form").querySelector("button.publish").disabled = true;
    try { showDraft(draft()); } catch (_) { /* not JSON (YAML pasted, or mid-edit): rows as they were */ }
  });

  $("taxonomy-form").querySelector("button.publish").addEventListener("click", async () => {
    const form = $("taxonomy-form");
    if (!taxonomyChecked) return;
    const answer = await session.api("actions", "/v1/taxonomy", {method: "PUT", json: taxonomyChecked});
    showTaxonomyProblems(answer);
    if (answer.ok) { form.elements.playbooks.value = ""; await loadTaxonomy(); }
    say(result(form), answer, answer.ok ? `${t("published")}: ${t("tx_version")} ${answer.body.version}` : "");
  });

  $("taxonomy-form").querySelector("button.rollback").addEventListener("click", async () => {
    const form = $("taxonomy-form");
    const answer = await session.api("actions", "/v1/taxonomy/rollback", {method: "POST"});
    showTaxonomyProblems(answer);
    if (answer.ok) await loadTaxonomy();
    say(result(form), answer, answer.ok ? `${t("rolled_back")}: ${t("tx_version")} ${answer.body.version}` : "");
  });

  // --- webhooks (notify) ------------------------------------------------------------------------
  async function loadWebhooks() {
    await loadTable("webhook-table", "notify", "/v1/admin/webhooks", (data, body) => {
      for (const w of data.webhooks) {
        const row = el("tr", {"data-id": w.id, "data-status": w.status});
        cells(row, [w.url, w.events.join(", "), w.status, td(
          button("test", () => testWebhook(w.id), {class: "test"}), " ",
          button("rotate", () => rotateWebhook(w.id), {class: "rotate"}), " ",
          button("deliveries", () => loadDeliveries(w.id), {class: "history"}), " ",
          button("delete", () => deleteWebhook(w.id), {class: "delete"}))]);
        body.append(row);
      }
    });
  }

  $("webhook-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target.elements;
    const answer = await session.api("notify", "/v1/admin/webhooks", {method: "POST", json: {
      url: f.url.value.trim(), events: list(f.events.value), format: f.format.value, description: f.description.value}});
    say(result(event.target), answer, "");
    if (answer.ok) { showSecret($("webhook-secret"), answer.body.secret); event.target.reset(); loadWebhooks(); }
  });

  async function testWebhook(id) {
    const answer = await session.api("notify", `/v1/admin/webhooks/${encodeURIComponent(id)}/test`, {method: "POST"});
    const line = result($("webhook-table").parentElement);
    if (answer.ok) {
      const r = answer.body;
      line.classList.toggle("error", !r.ok);
      line.textContent = `${t(r.ok ? "test_ok" : "test_failed")}: ${r.status_code ?? "—"} · ${r.latency_ms ?? "—"} ms` +
        (r.error ? ` · ${r.error}` : "");
      line.dataset.ok = String(r.ok);
    } else say(line, answer, "");
    loadDeliveries(id);
  }

  async function rotateWebhook(id) {
    if (!(await confirmed("ask_rotate_secret", id))) return;
    const answer = await session.api("notify", `/v1/admin/webhooks/${encodeURIComponent(id)}/rotate-secret`, {method: "POST"});
    say(result($("webhook-table").parentElement), answer, "");
    if (answer.ok) showSecret($("webhook-secret"), answer.body.secret);
  }

  async function deleteWebhook(id) {
    if (!(await confirmed("ask_delete_webhook", id))) return;
    const answer = await session.api("notify", `/v1/admin/webhooks/${encodeURIComponent(id)}`, {method: "DELETE"});
    say(result($("webhook-table").parentElement), answer, "");
    $("deliveries").hidden = true;
    loadWebhooks();
  }

  // A webhook's last attempts; their box shows after a 2xx answer and hides on a refusal.
  async function loadDeliveries(id) {
    const path = `/v1/admin/webhooks/${encodeURIComponent(id)}/deliveries?limit=20`;
    const shown = await loadTable("deliveries", "notify", path, (data, body) => {
      for (const a of data.attempts) {
        const row = el("tr", {"data-event": a.event_type || ""});
        cells(row, [when(a.attempted_at), a.event_type, a.status_code ?? t("failed"),
          a.latency_ms === null || a.latency_ms === undefined ? "—" : `${a.latency_ms} ms`, a.error]);
        body.append(row);
      }
    });
    $("deliveries").hidden = !shown;
  }

  // --- sign-in, sign-out, language --------------------------------------------------------------
  function fillChoices() {
    const role = $("staff-form").elements.role;
    const chosen = role.value;
    role.replaceChildren(...ROLES.map((r) => el("option", {value: r}, roleName(r))));
    if (chosen) role.value = chosen;
    const weekday = $("shift-form").elements.weekday;
    const day = weekday.value;
    weekday.replaceChildren(...Object.values(labelsOf("weekdays")).map((d, i) => el("option", {value: String(i)}, d)));
    if (day) weekday.value = day;
  }

  function signedIn(staff) {
    document.querySelector(".admin-nav").hidden = staff.role !== "cx_admin";
    // Store and area managers keep their own staff's shifts (the directory view, its cx-only
    // parts hidden: `body[data-role]`); the service scopes the list and refuses other staff.
    document.querySelector(".manager-nav").hidden = !["store_manager", "area_manager"].includes(staff.role);
    show("board");
  }
  session.on("signed-in", signedIn);
  session.on("signed-out", () => {
    document.querySelector(".admin-nav").hidden = true;
    document.querySelector(".manager-nav").hidden = true;
    for (const box of [$("key-secret"), $("webhook-secret")]) { box.hidden = true; box.querySelector(".secret").textContent = ""; }
    show("board");
    $("admin").hidden = true;
  });
  document.addEventListener("voc-language", (event) => {
    lang = event.detail;
    fillChoices();
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
    // Controls without a visible label of their own are named for screen readers.
    for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
    if (view !== "board") show(view);
  });

  // Loaded before dashboard.js: its first language pass (after the labels, as this) labels these
  // sections too, and its restore of a session in this tab reaches `signedIn` through the session's event.
  session.labelsReady.then(fillChoices);
})();
