// The console's Admin sections for a cx_admin: directory (notify), API keys (feedback), playbooks
// and taxonomy (actions) and webhooks (notify). Each is a client of the owning service's REST API with the
// staff member's token (session.js): the service validates, scopes, audits and refuses; this file
// only shows what it answers (a refusal in the reader's language, its fields marked, the
// service's own words kept as a detail; a file's problems by line or file/line/field).
// Everything shown is set as text (textContent), never as HTML.
"use strict";
(function () {
  const session = window.VocConsole;
  const ROLES = ["staff", "shift_lead", "store_manager", "area_manager", "cx_admin", "analyst"];
  const VIEWS = ["cases", "directory", "keys", "playbooks", "taxonomy", "webhooks", "suppressions"];
  const $ = (id) => document.getElementById(id);
  let lang = document.documentElement.lang === "en" ? "en" : "ko";
  let view = "board";
  let shiftsOf = null;  // the staff member whose shifts are shown
  let storeRows = [];  // notify's stores as last listed (the shifts' time zone, store names, the store pickers)
  let storesListed = false;  // whether notify answered that list (an empty one says "no stores yet")
  let staffRows = [];
  let departments = {};  // actions' taxonomy departments by id, as last read (their names)
  let playbookFiles = null;  // the files last validated, published as they are
  let eventTypes = null;  // notify's webhook event types, once read
  const ALL_EVENTS = "*";  // the API's "every type, types added later included"
  const FAILED_COUNTED = 10000;  // notify's cap on a webhook's failed deliveries counted
  const KEPT_DAYS = 30;  // how long notify keeps finished deliveries: what "resend failed" reaches

  function t(key) { return session.label(lang, key); }
  function said(key, vars) { return session.fill(t(key), vars); }
  function labelsOf(key) { return session.labelGroup(lang, key); }
  const el = session.el;
  function button(key, onClick, attrs) {
    const node = el("button", {type: "button", ...(attrs || {})}, t(key));
    node.addEventListener("click", onClick);
    return node;
  }
  function cells(row, values) { for (const v of values) row.append(v instanceof Node ? v : el("td", {}, v ?? "—")); }
  function td(...nodes) { const cell = el("td", {}); cell.append(...nodes); return cell; }
  // A cell of several things, a comma between them.
  function listCell(nodes) {
    const cell = td();
    nodes.forEach((node, i) => cell.append(...(i ? [", "] : []), node));
    return cell;
  }
  function roleName(role) { return labelsOf("roles")[role] || role; }

  // A thing by its name, its id beside it in small type (what the APIs and CSVs use); the id
  // alone where no name is known.
  function named(name, id) {
    const node = el("span", {class: "named"});
    if (name && name !== id) node.append(name, " ", el("small", {class: "id"}, `(${id})`));
    else node.append(id ?? "—");
    return node;
  }
  function namedText(name, id) { return name && name !== id ? `${name} (${id})` : id; }
  function storeName(id) { return (storeRows.find((s) => s.id === id) || {}).name; }
  function departmentName(id) { const d = departments[id]; return d && (d[lang] || d.en || d.ko); }
  function storesCell(ids) { return listCell((ids || []).map((id) => named(storeName(id), id))); }
  // A webhook event type by its label in the reader's language, the raw type beside (what the
  // API and the receiver see); "*" is "all events", a type without a label its raw type alone.
  function eventType(type) {
    const name = type === ALL_EVENTS ? t("all_events") : labelsOf("webhook_events")[type];
    const node = el("span", {class: "event-type"});
    node.append(...(name ? [name, " "] : []), el("code", {}, type));
    return node;
  }

  // --- answers ----------------------------------------------------------------------------------
  // Every admin call: session.api's answer, or a refusal that the network failed (status 0) or
  // the session ended (401), so every form says each the same way instead of throwing.
  async function request(service, path, options) {
    try {
      return await session.api(service, path, options);
    } catch (error) {
      return {status: error && error.auth ? 401 : 0, ok: false, body: null};
    }
  }

  // A problem's control: problem+json `errors[].field` "body.0.email" / "body.store_ids.2" (or a
  // `loc` ["body", "url"]) names the form control `email` / `store_ids` / `url`: the first name
  // after where it was sent and past list indexes.
  function fieldName(problem) {
    const path = Array.isArray(problem.loc) ? problem.loc.map(String) : String(problem.field || "").split(".");
    if (["body", "query", "path"].includes(path[0])) path.shift();
    return path.find((part) => part && !/^\d+$/.test(part)) || "";
  }
  function controlsOf(form, name) {
    return form && name ? [...form.querySelectorAll(`[name="${CSS.escape(name)}"]`)] : [];
  }
  // What the form calls a control: its group's legend, its aria-label or its label's own words.
  function fieldLabel(control) {
    const group = control.closest("fieldset");
    const legend = group && control.type === "checkbox" && group.querySelector("legend");
    if (legend) return legend.textContent.trim();
    if (control.getAttribute("aria-label")) return control.getAttribute("aria-label");
    const label = control.labels && control.labels[0];
    if (!label) return control.name;
    const words = label.cloneNode(true);
    for (const inner of words.querySelectorAll("input, select, textarea")) inner.remove();
    return words.textContent.trim();
  }
  // A field's reason in the reader's words: by the validator's `type` where the service sends
  // one (pydantic's), else by the answer's status; the service's own words stay as the detail.
  const REASONS = {
    missing: "missing", choose_one: "choose_one", string_too_short: "too_short", too_short: "too_short",
    string_too_long: "too_long", too_long: "too_long", url_parsing: "url", url_scheme: "url", url_type: "url",
    enum: "choice", literal_error: "choice", string_pattern_mismatch: "pattern", int_parsing: "number",
    int_type: "number", float_parsing: "number", time_parsing: "time", time_type: "time", extra_forbidden: "unexpected",
  };
  function reason(problem, status) {
    return labelsOf("field_reasons")[REASONS[problem.type] || (status === 409 ? "conflict" : "invalid")];
  }
  function statusText(status) {
    const texts = labelsOf("problem_status");
    const key = status === 0 ? "network" : status >= 500 ? "5xx" : String(status);
    return (texts[key] || texts.other || "").replace("{status}", String(status));
  }

  // Marked controls name the result line that says why (aria-describedby); typing in one, or
  // the form's next answer, clears the mark.
  let resultIds = 0;
  function markInvalid(controls, node) {
    if (!node.id) node.id = `admin-result-${++resultIds}`;
    for (const control of controls) {
      control.setAttribute("aria-invalid", "true");
      const described = (control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (!described.includes(node.id)) control.setAttribute("aria-describedby", [...described, node.id].join(" "));
      control.dataset.problemOf = node.id;
    }
  }
  function unmark(controls) {
    for (const control of controls) {
      if (!control.dataset.problemOf) continue;
      const described = (control.getAttribute("aria-describedby") || "").split(" ")
        .filter((id) => id && id !== control.dataset.problemOf);
      if (described.length) control.setAttribute("aria-describedby", described.join(" "));
      else control.removeAttribute("aria-describedby");
      control.removeAttribute("aria-invalid");
      delete control.dataset.problemOf;
    }
  }
  for (const type of ["input", "change"]) {
    $("admin").addEventListener(type, (event) => {
      const control = event.target;
      if (!control.dataset || !control.dataset.problemOf) return;
      unmark([...document.querySelectorAll(`[data-problem-of="${control.dataset.problemOf}"][name="${CSS.escape(control.name)}"]`)]);
    });
  }

  // A result line. A refusal says what its status means in the reader's language; each field it
  // blames is marked in `form` (the element holding the controls; by default the form holding
  // the line) and named by the form's
  // own label with its reason ("URL: not a valid URL"); the service's own words (English) follow
  // as a secondary detail. A file's problems (row, file/line) have their own table.
  function say(node, answer, okText, form) {
    const owner = form || node.closest("form");
    if (owner) unmark([...owner.querySelectorAll("[data-problem-of]")]);
    node.classList.toggle("error", !answer.ok);
    node.dataset.status = String(answer.status);
    if (answer.ok) { node.textContent = okText; return; }
    const body = answer.body || {};
    const problems = (body.errors || []).filter((e) => e.row === undefined && e.file === undefined);
    const lines = [el("span", {class: "summary"}, statusText(answer.status))];
    const said = new Set();
    let first = null;
    for (const problem of problems) {
      const controls = controlsOf(owner, fieldName(problem));
      if (!controls.length) continue;  // no control of this form: the detail names it
      markInvalid(controls, node);
      first = first || controls[0];
      const line = `${fieldLabel(controls[0])}: ${reason(problem, answer.status)}`;
      if (!said.has(line)) lines.push(el("span", {class: "field-problem", "data-field": controls[0].name}, line));
      said.add(line);
    }
    // A field's message the detail already says (notify's "url: <reason>") is not said twice.
    const repeats = (e) => body.detail && String(body.detail).includes(e.message);
    const detail = [body.detail, ...problems.filter((e) => e.message && !repeats(e))
      .map((e) => `${e.field ?? (e.loc || []).join(".")}: ${e.message}`)]
      .filter(Boolean).join(" · ");
    if (detail) {
      const secondary = el("span", {class: "server-detail"}, `${t("server_said")}: `);
      secondary.append(el("span", {lang: "en"}, detail));  // the services answer in English
      lines.push(secondary);
    }
    node.replaceChildren(...lines);
    if (first && !first.disabled) first.focus();
  }
  // What the service would refuse, refused before sending and said as the service's answer is:
  // a group of choices (`name`) with none chosen.
  function refuseNoChoice(form, name) {
    say(result(form), {ok: false, status: 422, body: {errors: [{field: `body.${name}`, type: "choose_one"}]}}, "", form);
  }
  function result(container) { return container.querySelector(".result"); }
  // A secret shown once, with what it is for (a box left open said nothing of whose it was);
  // it goes when its view is left, at sign-out, and when its webhook is deleted. (Leaving, not
  // arriving: a secret answered after its view was left waits there to be seen.)
  function showSecret(box, secret, owner) {
    box.hidden = false;
    box.dataset.owner = owner.id;
    box.querySelector(".secret").textContent = secret;
    let line = box.querySelector(".for");
    if (!line) { line = el("p", {class: "for"}); box.querySelector(".secret").before(line); }
    line.textContent = said("secret_for", {name: owner.name});
  }
  const SECRET_BOXES = {keys: "key-secret", webhooks: "webhook-secret"};
  function hideSecrets({owner, view} = {}) {
    for (const [boxView, id] of Object.entries(SECRET_BOXES)) {
      const box = $(id);
      if ((owner && box.dataset.owner !== owner) || (view && boxView !== view)) continue;
      box.hidden = true;
      box.querySelector(".secret").textContent = "";
    }
  }

  // A section's table as the owning service lists it now: GET `path` at `service` with the staff
  // token, the table's rows emptied, then (only on a 2xx answer) `fill(answer body, tbody)` adds
  // its rows; a refusal leaves it empty. Emptying and filling stay in one step after the answer,
  // so two loads of one table never mix their rows. Resolves to whether the answer was 2xx.
  async function loadTable(id, service, path, fill) {
    return drawTable(id, await request(service, path), fill);
  }
  function drawTable(id, answer, fill) {
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
    const leaving = document.body.dataset.shownView;
    if (leaving && leaving !== next) hideSecrets({view: leaving});
    document.body.dataset.shownView = next;
    // The view shown is said, not only coloured; focus stays on the nav button pressed.
    for (const b of document.querySelectorAll("#nav button")) {
      b.classList.toggle("active", b.dataset.view === next);
      if (b.dataset.view === next) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    }
    const load = {cases: () => window.VocCases.load(), directory: loadDirectory, keys: loadKeys,
      playbooks: loadPlaybooks, taxonomy: loadTaxonomy, webhooks: loadWebhooks, suppressions: () => loadSuppressions("")}[next];
    if (load && (!options || options.load !== false)) load();
  }
  window.VocViews = {show};
  for (const b of document.querySelectorAll("#nav button")) b.addEventListener("click", () => show(b.dataset.view));

  // --- directory (notify) ----------------------------------------------------------------------
  // The staff table names their stores and department: the three lists are read at once, the
  // table drawn once the names are in.
  async function loadDirectory() {
    const [staff, stores] = await Promise.all([request("notify", "/v1/admin/staff"), readStores(), readDepartments()]);
    drawStaff(staff);
    drawStores(stores);
    drawStorePicker($("staff-stores"));
    if (!stores.ok) say(result($("staff-form")), stores, "");
    if (shiftsOf) loadShifts(shiftsOf);
  }

  async function loadStaff() { drawStaff(await request("notify", "/v1/admin/staff")); }
  function drawStaff(answer) {
    drawTable("staff-table", answer, (data, body) => {
      staffRows = data.staff;
      for (const s of staffRows) {
        const row = el("tr", {"data-id": s.id, "data-active": String(s.active)});
        const actions = td(button("edit", () => editStaff(s), {class: "edit cx-only"}), " ",
          button("shifts", () => loadShifts(s.id), {class: "shifts"}), " ",
          button(s.active ? "deactivate" : "activate", () => setActive(s, !s.active), {class: "toggle cx-only"}));
        // Areas have no names in any API: their id.
        const place = storesCell(s.store_ids);
        if (s.area_id) place.append(` (${s.area_id})`);
        if (s.department_id) place.append(" · ", named(departmentName(s.department_id), s.department_id));
        cells(row, [s.id, s.name, s.email, roleName(s.role), place, t(s.active ? "active" : "inactive"), actions]);
        body.append(row);
      }
    });
  }

  // actions' taxonomy departments (public): their names in the staff table. Unread, ids show.
  async function readDepartments() {
    const answer = await request("actions", "/v1/taxonomy");
    if (answer.ok) departments = Object.fromEntries(answer.body.departments.map((d) => [d.id, d]));
  }

  function editStaff(s) {
    const form = $("staff-form");
    for (const name of ["id", "name", "email", "area_id", "department_id"]) form.elements[name].value = s[name] || "";
    form.elements.role.value = s.role;
    drawStorePicker($("staff-stores"), s.store_ids || []);
    form.elements.active.checked = s.active;
    form.elements.language.value = s.language || "";
    form.elements.password.value = "";  // blank keeps it; typing one resets it
    form.elements.name.focus();
  }

  $("staff-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target.elements;
    const member = {id: f.id.value.trim(), name: f.name.value.trim(), email: f.email.value.trim(),
      role: f.role.value, store_ids: checkedValues($("staff-stores")),
      area_id: f.area_id.value.trim() || null, active: f.active.checked,
      department_id: f.department_id.value.trim() || null};
    // The password only when typed: someone new needs one (the service says so), an edit without
    // one keeps theirs.
    if (f.password.value) member.password = f.password.value;
    if (f.language.value) member.language = f.language.value;
    const answer = await request("notify", "/v1/admin/staff", {method: "PUT", json: [member]});
    say(result(event.target), answer, t("saved"));
    if (answer.ok) { event.target.reset(); loadStaff(); }
  });

  async function setActive(member, active) {
    if (!active && !(await confirmed("ask_deactivate", namedText(member.name, member.id)))) return;
    const answer = await request("notify", `/v1/admin/staff/${encodeURIComponent(member.id)}/${active ? "activate" : "deactivate"}`,
      {method: "POST"});
    say(result($("staff-form")), answer, t("saved"));
    loadStaff();
  }

  async function loadShifts(id) {
    shiftsOf = id;
    const box = $("shifts");
    const answer = await request("notify", `/v1/admin/staff/${encodeURIComponent(id)}/shifts`);
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
    const answer = await request("notify", `/v1/admin/staff/${encodeURIComponent(shiftsOf)}/shifts`,
      {method: "PUT", json: shifts.map(({weekday, starts, ends}) => ({weekday, starts, ends}))});
    if (!answer.ok) { say(result(box), answer, "", $("shift-form")); return; }
    await loadShifts(shiftsOf);
    say(result(box), answer, t("saved"));
  }

  $("shift-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target.elements;
    const current = JSON.parse($("shifts").dataset.shifts || "[]");
    // No shifts means paged at any hour; the first one limits the pages to the shifts entered,
    // which a manager adding "tonight's" shift did not expect: asked first.
    const member = staffRows.find((s) => s.id === shiftsOf);
    if (!current.length && !(await confirmed("ask_first_shift", namedText(member && member.name, shiftsOf)))) return;
    putShifts([...current, {weekday: Number(f.weekday.value), starts: f.starts.value, ends: f.ends.value}]);
  });

  $("import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const file = form.elements.file.files[0];
    if (!file) return;
    const answer = await request("notify", "/v1/admin/staff:import", {method: "POST", text: await file.text(), type: "text/csv"});
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
    result(form).querySelector(".summary").prepend(`${t("refused")}: `);
    for (const e of (answer.body && answer.body.errors) || []) {
      const row = el("tr", {"data-line": String(e.row)});
      cells(row, [e.row, e.field, e.message]);
      body.append(row);
    }
  });

  // notify's store directory, read once for all that needs it (the stores' table, the shifts'
  // time zone, store names, the store pickers): kept in `storeRows` on a 2xx answer.
  async function readStores() {
    const answer = await request("notify", "/v1/admin/stores");
    if (answer.ok) { storeRows = answer.body; storesListed = true; }
    return answer;
  }
  async function loadStores() {
    drawStores(await readStores());
    drawStorePicker($("staff-stores"));
  }
  function drawStores(answer) {
    drawTable("store-table", answer, (data, body) => {
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
    let answer = await request("notify", "/v1/admin/stores", {method: "PUT", json: [store]});
    if (answer.ok) answer = await request("feedback", "/v1/admin/stores",
      {method: "PUT", json: [{id: store.id, name: store.name, area_id: store.area_id}]});
    say(result(box), answer, t("saved"), event.target);
    if (answer.ok) { event.target.reset(); loadStores(); }
  });

  // --- API keys (feedback) ----------------------------------------------------------------------
  // The keys' stores by name, and the new key's store picker: the directory's store list.
  async function loadKeys() {
    const stores = await readStores();
    drawStorePicker($("key-stores"));
    if (!stores.ok) say(result($("key-form")), stores, "");
    await loadTable("key-table", "feedback", "/v1/admin/api-keys", (data, body) => {
      for (const k of data) {
        const state = k.revoked_at ? "revoked" : (k.expires_at ? "expires" : "active");
        const row = el("tr", {"data-id": k.id, "data-state": state});
        const actions = k.revoked_at ? td() : td(button("rotate", () => rotateKey(k), {class: "rotate"}), " ",
          button("revoke", () => revokeKey(k), {class: "revoke"}));
        cells(row, [k.id, k.name, storesCell(k.store_ids), k.prefix,
          state === "expires" ? `${t("expires")} ${session.formatTime(k.expires_at, lang)}` : t(state), actions]);
        body.append(row);
      }
    });
  }

  // The store picker (an API key's stores, a staff member's: a fieldset.store-picker of
  // `store_ids`): one checkbox a store of the directory, "name (id)". What was ticked stays ticked
  // across a redraw, unless `ticked` (ids) says what is. A ticked id the directory does not list
  // stays, by its id: saving the form must not drop it unseen.
  function drawStorePicker(group, ticked) {
    const options = group.querySelector(".options");
    const chosen = new Set(ticked || checkedValues(options));
    const unlisted = [...chosen].filter((id) => !storeRows.some((s) => s.id === id));
    options.replaceChildren(...[...storeRows.map((s) => s.id), ...unlisted]
      .map((id) => choice("store_ids", id, named(storeName(id), id), chosen.has(id))));
    group.querySelector(".empty").hidden = !storesListed || storeRows.length > 0;
  }
  function choice(name, value, text, checked) {
    const input = el("input", {type: "checkbox", name, value});
    input.checked = checked;
    const label = el("label", {class: "choice"});
    label.append(input, " ", text);
    return label;
  }
  function checkedValues(container) { return [...container.querySelectorAll("input:checked")].map((i) => i.value); }

  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const stores = checkedValues($("key-stores"));
    if (!stores.length) { refuseNoChoice(form, "store_ids"); return; }
    const answer = await request("feedback", "/v1/admin/api-keys",
      {method: "POST", json: {name: form.elements.name.value.trim(), store_ids: stores}});
    say(result(form), answer, "");
    if (answer.ok) {
      const name = form.elements.name.value.trim();
      showSecret($("key-secret"), answer.body.api_key, {id: answer.body.id, name: namedText(name, answer.body.id)});
      form.reset(); loadKeys();
    }
  });

  async function rotateKey(key) {
    if (!(await confirmed("ask_rotate_key", namedText(key.name, key.id)))) return;
    const grace = Number($("key-grace").value || 0);
    const answer = await request("feedback", `/v1/admin/api-keys/${encodeURIComponent(key.id)}/rotate`,
      {method: "POST", json: {grace_seconds: grace}});
    say(result($("key-table").parentElement), answer, "", $("key-table").parentElement);  // the grace field's card
    if (answer.ok) showSecret($("key-secret"), answer.body.api_key, {id: answer.body.id, name: namedText(key.name, answer.body.id)});
    loadKeys();
  }

  async function revokeKey(key) {
    if (!(await confirmed("ask_revoke", namedText(key.name, key.id)))) return;
    const answer = await request("feedback", `/v1/admin/api-keys/${encodeURIComponent(key.id)}`, {method: "DELETE"});
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
          p.version > 1 ? td(button("rollback", () => rollBack(p.id, title), {class: "rollback"})) : td()]);
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
    const answer = await request("actions", "/v1/playbooks:validate", {method: "POST", json: {files}});
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
    const answer = await request("actions", "/v1/playbooks", {method: "PUT", json: {files: playbookFiles}});
    showPlaybookProblems(answer);
    say(result(form), answer, answer.ok
      ? `${t("published")}: ${answer.body.published.map((p) => `${p.id} v${p.version}`).join(", ")}` : "");
    form.querySelector("button.publish").disabled = true;
    playbookFiles = null;
    loadPlaybooks();
  });

  async function rollBack(id, title) {
    if (!(await confirmed("ask_rollback", namedText(title, id)))) return;
    const answer = await request("actions", `/v1/playbooks/${encodeURIComponent(id)}/rollback`, {method: "POST"});
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
      departments = Object.fromEntries(data.departments.map((d) => [d.id, d]));
      const categories = Object.fromEntries(data.categories.map((c) => [c.id, c]));
      const categoryName = (id) => categories[id] && (categories[id][lang] || categories[id].en);
      for (const c of data.categories) {
        const row = el("tr", {"data-id": c.id, "data-retired": String(c.retired)});
        cells(row, [c.id, c.ko, c.en, c.parent ? td(named(categoryName(c.parent), c.parent)) : null,
          labelsOf("severities")[c.severity] || c.severity,
          c.department ? td(named(departmentName(c.department), c.department)) : null,
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
    const answer = await request("actions", "/v1/taxonomy:validate", {method: "POST", json: sent});
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
    const answer = await request("actions", "/v1/taxonomy", {method: "PUT", json: taxonomyChecked});
    showTaxonomyProblems(answer);
    if (answer.ok) { form.elements.playbooks.value = ""; await loadTaxonomy(); }
    say(result(form), answer, answer.ok ? `${t("published")}: ${t("tx_version")} ${answer.body.version}` : "");
  });

  $("taxonomy-form").querySelector("button.rollback").addEventListener("click", async () => {
    const form = $("taxonomy-form");
    const answer = await request("actions", "/v1/taxonomy/rollback", {method: "POST"});
    showTaxonomyProblems(answer);
    if (answer.ok) await loadTaxonomy();
    say(result(form), answer, answer.ok ? `${t("rolled_back")}: ${t("tx_version")} ${answer.body.version}` : "");
  });

  // --- webhooks (notify) ------------------------------------------------------------------------
  // The list as read is also told to the board (dashboard.js: its notice of disabled endpoints
  // follows an enable or a delete here at once).
  async function loadWebhooks() {
    await Promise.all([loadEventTypes(), loadTable("webhook-table", "notify", "/v1/admin/webhooks", (data, body) => {
      for (const w of data.webhooks) {
        const row = el("tr", {"data-id": w.id, "data-status": w.status});
        // A webhook has no name: its description, else its URL, says which it is.
        const which = namedText(w.description || w.url, w.id);
        const enable = w.status === "disabled"
          ? [button("wh_enable", () => enableWebhook(w.id, which), {class: "enable"}), " "] : [];
        // What failed (and what it missed while disabled) goes again once it is active.
        const recover = w.status === "active" && w.failed_deliveries > 0
          ? [button("wh_recover", () => recoverWebhook(w.id, which), {class: "recover"}), " "] : [];
        if (recover.length) recover[0].textContent = t("wh_recover").replace("{count}", failedCount(w));
        cells(row, [webhookCell(w), listCell(w.events.map(eventType)), webhookStatusCell(w), td(...enable, ...recover,
          button("test", () => testWebhook(w.id), {class: "test"}), " ",
          button("rotate", () => rotateWebhook(w.id, which), {class: "rotate"}), " ",
          button("deliveries", () => loadDeliveries(w.id), {class: "history"}), " ",
          button("delete", () => deleteWebhook(w.id, which), {class: "delete"}))]);
        body.append(row);
      }
      document.dispatchEvent(new CustomEvent("voc-webhooks", {detail: data.webhooks}));
    })]);
  }

  // Which it is: its description, its URL, and its format when not the standard body.
  function webhookCell(w) {
    const cell = el("td", {class: "endpoint"});
    if (w.description) cell.append(el("strong", {class: "description"}, w.description));
    cell.append(el("span", {class: "url"}, w.url));
    if (w.format && w.format !== "standard") cell.append(el("span", {class: "format"}, labelsOf("webhook_formats")[w.format] || w.format));
    return cell;
  }

  // Its state in words; a disabled one also says why (in the reader's words where notify's are known) and since when.
  function webhookStatusCell(w) {
    const cell = el("td", {class: "status"});
    cell.append(el("span", {class: "state"}, labelsOf("webhook_statuses")[w.status] || w.status));
    if (w.status === "disabled") {
      cell.append(window.VocBoard.webhookReason(w.disabled_reason),
        el("span", {class: "since"}, t("wh_disabled_since").replace("{time}", session.formatTime(w.disabled_at, lang))));
    }
    if (w.failed_deliveries > 0) cell.append(el("span", {class: "failed"}, t("wh_failed").replace("{count}", failedCount(w))));
    return cell;
  }
  // notify counts a webhook's failed deliveries to 10,000.
  function failedCount(w) {
    return w.failed_deliveries >= FAILED_COUNTED ? `${FAILED_COUNTED.toLocaleString(lang)}+` : String(w.failed_deliveries);
  }

  // The types to subscribe to are notify's (its catalogue, read once), each by its label in the
  // reader's language and its raw type; "all events" (*) stands alone: while it is ticked, the
  // single types are disabled (the API refuses "*" with others).
  async function loadEventTypes() {
    if (!eventTypes) {
      const answer = await request("notify", "/v1/admin/webhooks/event-types");
      if (!answer.ok) { say(result($("webhook-form")), answer, ""); return; }
      eventTypes = answer.body.event_types;
    }
    const options = $("webhook-events").querySelector(".options");
    const ticked = new Set(options.children.length ? checkedValues(options) : [ALL_EVENTS]);
    options.replaceChildren(...[ALL_EVENTS, ...eventTypes]
      .map((type) => choice("events", type, eventType(type), ticked.has(type))));
    options.querySelector(`input[value="${ALL_EVENTS}"]`).defaultChecked = true;  // what a reset goes back to
    allEventsRule();
  }
  function allEventsRule() {
    const all = $("webhook-events").querySelector(`input[value="${ALL_EVENTS}"]`);
    for (const input of $("webhook-events").querySelectorAll("input")) if (input !== all) input.disabled = all.checked;
  }
  $("webhook-events").addEventListener("change", allEventsRule);

  $("webhook-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const f = form.elements;
    const ticked = checkedValues($("webhook-events"));
    const events = ticked.includes(ALL_EVENTS) ? [ALL_EVENTS] : ticked;
    if (!events.length) { refuseNoChoice(form, "events"); return; }
    const answer = await request("notify", "/v1/admin/webhooks", {method: "POST", json: {
      url: f.url.value.trim(), events, format: f.format.value, description: f.description.value}});
    const which = namedText(f.description.value.trim() || f.url.value.trim(), answer.ok ? answer.body.id : "");
    say(result(form), answer, answer.ok ? said("wh_created", {id: which}) : "");
    if (answer.ok) {
      showSecret($("webhook-secret"), answer.body.secret, {id: answer.body.id, name: which});
      form.reset(); allEventsRule(); loadWebhooks();
    }
  });

  async function testWebhook(id) {
    const answer = await request("notify", `/v1/admin/webhooks/${encodeURIComponent(id)}/test`, {method: "POST"});
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

  async function rotateWebhook(id, which) {
    if (!(await confirmed("ask_rotate_secret", which))) return;
    const answer = await request("notify", `/v1/admin/webhooks/${encodeURIComponent(id)}/rotate-secret`, {method: "POST"});
    // The replaced secret keeps signing beside the new one until then (notify's overlap, 24 h).
    const until = answer.ok && answer.body.previous_secret_until;
    say(result($("webhook-table").parentElement), answer, !answer.ok ? "" : until
      ? said("wh_rotated", {id: which, time: session.formatTime(until, lang)}) : said("wh_rotated_now", {id: which}));
    if (answer.ok) showSecret($("webhook-secret"), answer.body.secret, {id, name: which});
  }

  // Active again with its secret and events (notify: POST …/enable, audited). The pressed button
  // goes with the redraw: the focus moves to the row's Test, the way to check the receiver.
  async function enableWebhook(id, which) {
    const answer = await request("notify", `/v1/admin/webhooks/${encodeURIComponent(id)}/enable`, {method: "POST"});
    say(result($("webhook-table").parentElement), answer, t("wh_enabled").replace("{id}", which));
    await loadWebhooks();
    const test = $("webhook-table").querySelector(`tr[data-id="${CSS.escape(id)}"] button.test`);
    if (test) test.focus();
  }

  // Every delivery that failed and is still kept (30 days), once more each (notify: POST
  // …/recover, audited), under the webhook-id it had before, so a receiver that took one can tell.
  async function recoverWebhook(id, which) {
    if (!(await confirmed("ask_recover_webhook", which))) return;
    const since = new Date(Date.now() - KEPT_DAYS * 86400 * 1000).toISOString();
    const answer = await request("notify", `/v1/admin/webhooks/${encodeURIComponent(id)}/recover`,
      {method: "POST", json: {since}});
    say(result($("webhook-table").parentElement), answer,
      answer.ok ? t("wh_recovered").replace("{count}", answer.body.requeued).replace("{id}", which) : "");
    await loadWebhooks();
  }

  async function deleteWebhook(id, which) {
    if (!(await confirmed("ask_delete_webhook", which))) return;
    const answer = await request("notify", `/v1/admin/webhooks/${encodeURIComponent(id)}`, {method: "DELETE"});
    say(result($("webhook-table").parentElement), answer, answer.ok ? said("wh_deleted", {id: which}) : "");
    $("deliveries").hidden = true;
    if (answer.ok) hideSecrets({owner: id});
    await loadWebhooks();
    $("webhooks-title").focus();  // its row, and the button pressed, are gone
  }

  // A webhook's last attempts; their box shows after a 2xx answer and hides on a refusal.
  async function loadDeliveries(id) {
    const path = `/v1/admin/webhooks/${encodeURIComponent(id)}/deliveries?limit=20`;
    const shown = await loadTable("deliveries", "notify", path, (data, body) => {
      for (const a of data.attempts) {
        const row = el("tr", {"data-event": a.event_type || ""});
        cells(row, [session.formatTime(a.attempted_at, lang), a.event_type ? td(eventType(a.event_type)) : null,
          a.status_code ?? t("failed"), a.latency_ms === null || a.latency_ms === undefined ? "—" : `${a.latency_ms} ms`,
          a.error]);
        body.append(row);
      }
    });
    $("deliveries").hidden = !shown;
  }

  // --- mail suppressions (notify) ---------------------------------------------------------------
  // The addresses no follow-up is mailed to (their server refused them for good): the latest, or
  // one found by its e-mail (notify keeps only a keyed hash of it, so it is found, not listed in
  // full), lifted once the customer has fixed their mailbox. Resolves to notify's answer.
  async function loadSuppressions(email) {
    // An address goes in a body, never a URL (proxies log those).
    const answer = email
      ? await request("notify", "/v1/admin/mail-suppressions/search", {method: "POST", json: {email}})
      : await request("notify", "/v1/admin/mail-suppressions?limit=100");
    drawTable("suppression-table", answer, (data, body) => {
      for (const s of data.suppressions) {
        const row = el("tr", {"data-key": s.address_key});
        // The server's codes and words as it wrote them (English), masked by notify.
        cells(row, [s.recipient, el("td", {class: "reason", lang: "en"}, s.reason || "—"),
          session.formatTime(s.suppressed_at, lang), session.formatTime(s.expires_at, lang),
          td(button("sp_lift", () => liftSuppression(s), {class: "lift"}))]);
        body.append(row);
      }
    });
    return answer;
  }
  $("suppression-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const email = form.elements.email.value.trim();
    const answer = await loadSuppressions(email);
    const found = answer.ok && answer.body.suppressions.length > 0;
    say(result(form), answer, said(found ? "sp_found" : "sp_not_suppressed", {email}));
  });
  $("suppression-form").querySelector("button.latest").addEventListener("click", async () => {
    const form = $("suppression-form");
    form.reset();
    const answer = await loadSuppressions("");
    say(result(form), answer, answer.ok && answer.body.suppressions.length === 0 ? t("sp_none") : "");
  });
  async function liftSuppression(s) {
    if (!(await confirmed("ask_lift_suppression", s.recipient))) return;
    const path = `/v1/admin/mail-suppressions/${encodeURIComponent(s.address_key)}`;
    const answer = await request("notify", path, {method: "DELETE"});
    say(result($("suppression-table").parentElement), answer, answer.ok ? said("sp_lifted", {id: s.recipient}) : "");
    await loadSuppressions("");
    $("suppressions-title").focus();  // its row, and the button pressed, are gone
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
    document.querySelector(".admin-nav").hidden = !session.isAdmin(staff);
    // Store and area managers keep their own staff's shifts (the directory view, its cx-only
    // parts hidden: `body[data-role]`); the service scopes the list and refuses other staff.
    document.querySelector(".manager-nav").hidden = !["store_manager", "area_manager"].includes(staff.role);
    show("board");
  }
  session.on("signed-in", signedIn);
  session.on("signed-out", () => {
    document.querySelector(".admin-nav").hidden = true;
    document.querySelector(".manager-nav").hidden = true;
    hideSecrets();
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
