// The console's staff session: sign in at notify with e-mail and password, keep the access and
// refresh tokens in this tab's sessionStorage (never in a URL, a cookie or a log), refresh before
// the access token expires (notify rotates the refresh token each time), and sign out by revoking
// at notify. Every call goes to the service that owns the rule (feedback here, notify and actions
// at the origins /dashboard/config.json names), with the staff member's own token: each service
// checks it, scopes the answer and audits the change with them as actor.
"use strict";
(function () {
  const KEY = "voc-console-session";
  const REFRESH_MARGIN_S = 60;  // refresh this long before expiry (a fifth of a shorter token's life)
  const listeners = {"signed-in": [], "signed-out": []};
  let session = null;  // {access_token, refresh_token, expires_at (ms), staff}
  let bases = null;  // service -> origin ("" = this one)
  let refreshing = null;
  let timer = null;

  async function config() {
    if (bases) return bases;
    const response = await fetch("/dashboard/config.json");
    const body = response.ok ? await response.json() : {};
    bases = {feedback: "", notify: body.notify_url || "", actions: body.actions_url || ""};
    return bases;
  }

  function emit(name, detail) { for (const cb of listeners[name]) cb(detail); }

  function keep(answer) {
    session = {
      access_token: answer.access_token,
      refresh_token: answer.refresh_token,
      expires_at: Date.now() + answer.expires_in * 1000,
      staff: answer.staff,
    };
    sessionStorage.setItem(KEY, JSON.stringify(session));
    schedule();
  }

  function forget() {
    session = null;
    sessionStorage.removeItem(KEY);
    if (timer) clearTimeout(timer);
    timer = null;
  }

  function schedule() {
    if (timer) clearTimeout(timer);
    const life = session.expires_at - Date.now();
    const wait = Math.max(5000, life - Math.min(REFRESH_MARGIN_S * 1000, life / 5));
    timer = setTimeout(() => { refresh().catch(() => {}); }, wait);
  }

  async function post(service, path, body, token) {
    const base = (await config())[service];
    const headers = {"Content-Type": "application/json"};
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(base + path, {method: "POST", headers, body: JSON.stringify(body)});
  }

  // One refresh at a time (a second caller waits for the first); a refused refresh token (used
  // up, expired, the staff member deactivated) ends the session.
  function refresh() {
    if (!session) return Promise.reject(new Error("signed out"));
    if (!refreshing) {
      refreshing = (async () => {
        const response = await post("notify", "/v1/auth/refresh", {refresh_token: session.refresh_token});
        if (!response.ok) {
          forget();
          emit("signed-out", {expired: true});
          throw Object.assign(new Error("session ended"), {auth: true});
        }
        keep(await response.json());
      })().finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  async function signIn(email, password) {
    const response = await post("notify", "/v1/auth/login", {email, password});
    if (!response.ok) return {ok: false, status: response.status};
    keep(await response.json());
    emit("signed-in", session.staff);
    return {ok: true, staff: session.staff};
  }

  async function signOut() {
    const ending = session;
    forget();
    if (ending) {
      // The refresh token ends this session; notify also revokes every access token issued so far.
      try { await post("notify", "/v1/auth/logout", {refresh_token: ending.refresh_token}, ending.access_token); }
      catch (error) { /* offline: the tokens run out on their own */ }
    }
    emit("signed-out", {expired: false});
  }

  // A call to `service`'s REST API as the signed-in staff member: {status, ok, body} (body parsed
  // when JSON: a problem+json refusal carries `detail` and `errors`). A 401 is retried once after
  // a refresh. `options.text` sends a raw body with `options.type`; `options.blob` answers a 2xx
  // body as `blob` (a CSV export).
  async function api(service, path, options) {
    const opts = options || {};
    if (!session) throw Object.assign(new Error("signed out"), {auth: true});
    const base = (await config())[service];
    const send = () => {
      const headers = {Authorization: "Bearer " + session.access_token};
      let body;
      if (opts.text !== undefined) { headers["Content-Type"] = opts.type || "text/plain"; body = opts.text; }
      else if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.json); }
      return fetch(base + path, {method: opts.method || "GET", headers, body});
    };
    let response = await send();
    if (response.status === 401) {
      await refresh();
      response = await send();
    }
    const type = response.headers.get("content-type") || "";
    if (opts.blob && response.ok) return {status: response.status, ok: true, body: null, blob: await response.blob()};
    const body = type.includes("json") ? await response.json() : null;
    return {status: response.status, ok: response.ok, body};
  }

  // A session this tab kept (a reload): signed in again without the password ("signed-in").
  function restore() {
    try { session = JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (error) { session = null; }
    if (!session || !session.refresh_token) { session = null; return false; }
    if (session.expires_at - Date.now() < REFRESH_MARGIN_S * 1000) refresh().catch(() => {});
    else schedule();
    emit("signed-in", session.staff);
    return true;
  }

  // Labels of every part of the page, by language: one table a language for the whole console
  // (dashboard/i18n/ko.json, en.json), one lookup for the [data-i18n] nodes whichever script owns
  // them. `labelsReady` settles once both are read; the scripts render after it. A key without a
  // label shows as itself, as does every key should a file not load.
  const labels = {ko: {}, en: {}};
  const labelsReady = Promise.all(Object.keys(labels).map(async (lang) => {
    const path = `/dashboard/assets/i18n/${lang}.json`;
    try {
      const response = await fetch(path);
      if (response.ok) labels[lang] = await response.json();
      else console.warn(path, response.status);
    } catch (error) {
      console.warn(path, error);
    }
  }));
  function label(lang, key) { return labels[lang][key] ?? key; }
  // A text with its {placeholders} filled from `vars` (the one filler of the console's scripts).
  function fill(text, vars) { return text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? "")); }
  // A table of labels by value (roles, statuses, weekdays…): empty where there is none.
  function labelGroup(lang, key) {
    const group = labels[lang][key];
    return group && typeof group === "object" ? group : {};
  }

  // An element with attributes and text (set as text, never as HTML): the admin sections' and
  // the Cases view's one helper (the board draws SVG with its own).
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // A row's case opener: its text cell holds a button, which Tab reaches, Space and Enter press
  // and a screen reader names as a control (a focusable row read as all its cells, Space did
  // nothing). The row itself stays clickable for a mouse.
  function openerCell(text, onOpen) {
    const button = el("button", {type: "button", class: "open-case"}, text);
    button.addEventListener("click", onOpen);
    const cell = el("td", {class: "text", title: text});
    cell.append(button);
    return cell;
  }

  // Dates and times in the reader's own variant of the chosen language (en-GB, en-US, ko-KR as
  // the browser says), the language's usual one when the browser names another language.
  function dateLocale(lang) {
    const own = (navigator.languages || [navigator.language]).find((l) => l && l.split("-")[0] === lang);
    return own || (lang === "ko" ? "ko-KR" : "en-US");
  }

  // The console's one way to show a moment (an ISO string, or epoch seconds): date and time
  // with their time zone said (GMT+9, EST…), in `zone` (an IANA name: the store's, where the
  // caller knows it) or else the reader's own. A time without a zone was read as the reader's
  // clock when the store keeps another (UX review).
  const timeFormats = new Map();
  function viewerZone() { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; }
  function formatTime(at, lang, zone) {
    if (at === null || at === undefined || at === "") return "—";
    const moment = new Date(typeof at === "number" ? at * 1000 : at);
    if (Number.isNaN(moment.getTime())) return "—";
    const key = `${dateLocale(lang)} ${zone || ""}`;
    if (!timeFormats.has(key)) {
      const options = {year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
        timeZoneName: "short"};
      let format;
      try { format = new Intl.DateTimeFormat(dateLocale(lang), {...options, timeZone: zone || viewerZone()}); }
      catch (error) { format = new Intl.DateTimeFormat(dateLocale(lang), options); }  // a zone this browser lacks
      timeFormats.set(key, format);
    }
    return timeFormats.get(key).format(moment);
  }

  // Where the staff app is (notify's origin, "" when it is this one).
  async function staffAppUrl() { return (await config()).notify + "/"; }

  // Whether `staff` may use the services' admin APIs (`require_admin`: the cx_admin). The console
  // shows their parts, and asks those APIs, for them only: another role would only be refused.
  function isAdmin(staff) { return Boolean(staff) && staff.role === "cx_admin"; }

  window.VocConsole = {
    signIn, signOut, api, restore, refresh, labelsReady, label, labelGroup, fill, staffAppUrl, el, openerCell, dateLocale,
    formatTime, viewerZone, isAdmin,
    get staff() { return session ? session.staff : null; },
    on(name, cb) { listeners[name].push(cb); },
  };
})();
