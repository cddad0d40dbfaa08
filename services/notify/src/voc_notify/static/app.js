// Frontline VoC — staff app. Plain ES module, no build step, no dependencies.
// Routes: #/ (inbox), #/alerts/{id} (detail), #/fleet (managers: their staff's phones).
// The session (access and refresh tokens), the offline inbox and the queue of actions made
// offline live in IndexedDB (store.js), shared with the service worker.

const Store = window.VocStore;

// The interface's words, one file a language (static/i18n/ko.json, en.json; in the service
// worker's offline shell too), loaded before anything renders. The language is the one chosen
// before, else the browser's, else Korean; a key missing from it falls back to English, then to
// the key itself (t below), which is also what shows should a file not load.
const I18N = Object.fromEntries(await Promise.all(['ko', 'en'].map(async (lang) => {
  const path = `/static/i18n/${lang}.json`;
  try {
    const response = await fetch(path);
    if (response.ok) return [lang, await response.json()];
    console.warn(path, response.status);
  } catch (err) {
    console.warn(path, err);
  }
  return [lang, {}];
})));

const OUTCOMES = ['resolved', 'compensated', 'referred', 'no_action_needed', 'customer_unreachable'];
const EVENT_TYPES = ['alert.created', 'alert.updated', 'alert.acknowledged', 'alert.resolved', 'alert.escalated', 'alert.checklist'];

const state = {
  token: null, // the access token while signed in (the session itself is in IndexedDB)
  staff: null,
  lang: localStorage.getItem('voc.lang') || (navigator.language || 'ko').slice(0, 2),
  alerts: new Map(), // id -> summary
  liveAt: new Map(), // id -> when a live event last brought it (loadInbox keeps what is newer than its answer)
  inboxAnswers: 0, // inbox answers taken in; the drawn inbox marks how many it holds (body[data-answers])
  detail: null, // the alert detail on screen
  // The checklist lives on the server (#18): PUT /v1/alerts/{id}/steps/{index}; the detail
  // answer carries it, so a reload or another phone shows the same ticks.
  stream: null,
  streamRetry: 0,
  streamOpening: 0, // bumped by closeStream: an openStream still waiting for its ticket gives up
  pushNote: null,
  pending: new Map(), // alert id -> 'ack' | 'resolve' queued offline, not yet sent
  correcting: new Map(), // alert id -> the labels of its corrections queued offline, merged in order
  fleet: null, // managers: the fleet's health headline
  lastFlash: null, // {id, flash, at}: the last action's message, kept through re-renders
};
if (!I18N[state.lang]) state.lang = 'ko';

// How long an action's message stays through re-renders of the same alert.
const FLASH_KEPT_MS = 5000;

const $ = (sel, root = document) => root.querySelector(sel);
const app = () => $('#app');

// ---------------------------------------------------------------- i18n helpers

function t(key, vars = {}) {
  const dict = I18N[state.lang] || I18N.en;
  const text = dict[key] ?? I18N.en[key] ?? key;
  return typeof text === 'string' ? text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? '')) : text;
}
// Category labels as the server last sent them (the published taxonomy, #20 §3) come first: a
// category added after this app was loaded has no label of its own here.
const publishedLabels = {};
// Rows and live events carry `category_labels` ({ko, en}) too: the inbox learns a new category's label.
const learnLabel = (a) => {
  const label = a && a.category && a.category_labels && (a.category_labels[state.lang] || a.category_labels.en);
  if (label) publishedLabels[a.category] = label;
};
const lookup = (group, key) => (group === 'categories' && publishedLabels[key]) || (t(group) || {})[key]
  || String(key || '').replace(/_/g, ' ');

function ago(epochSeconds) {
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 45) return t('just_now');
  if (s < 3600) return t('min_ago', { n: Math.max(1, Math.round(s / 60)) });
  if (s < 86400) return t('hour_ago', { n: Math.floor(s / 3600) });
  return t('day_ago', { n: Math.floor(s / 86400) });
}

function duration(seconds) {
  if (!seconds) return '—';
  if (seconds < 60) return t('seconds', { n: seconds });
  if (seconds < 3600) return t('minutes', { n: Math.round(seconds / 60) });
  return t('hours', { n: +(seconds / 3600).toFixed(1) });
}

// The reader's own variant of the app's language (en-GB, en-US… as the browser says).
function dateLocale() {
  const own = (navigator.languages || [navigator.language]).find((l) => l && l.split('-')[0] === state.lang);
  return own || (state.lang === 'ko' ? 'ko-KR' : 'en-US');
}

function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleString(dateLocale(), {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

function money(amount, currency) {
  try {
    return new Intl.NumberFormat(state.lang === 'ko' ? 'ko-KR' : 'en-US', {
      style: 'currency', currency: currency || 'KRW', maximumFractionDigits: 0,
    }).format(amount);
  } catch (_) {
    return `${amount} ${currency || ''}`.trim();
  }
}

// ---------------------------------------------------------------- DOM helper (no innerHTML: texts are customer input)

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function toast(text, kind = 'info') {
  const el = $('#toast');
  el.textContent = text;
  el.className = `toast toast-${kind}`;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

// Said to screen readers, not shown (WCAG 4.1.3): #announcer is a live region present from the
// start, which they watch; text put into a newly drawn screen is not read out. It is emptied
// first so the same words twice are said twice; words a moment apart are said together.
function announce(text) {
  const el = $('#announcer');
  announce.queue = [...(announce.queue || []), text];
  el.textContent = '';
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => {
    el.textContent = announce.queue.join(' ');
    announce.queue = [];
  }, 150);
}

// ---------------------------------------------------------------- focus and the tab's title

let focusPending = false; // a changed route: the next drawing of its screen takes the focus

// A screen drawn anew in #app: the focus, if it was on the old one, goes to the same control (by
// id) on the new one, else to the heading. Removed with its element, it would fall to <body>,
// and the next Tab would start again from the top bar.
function keepingFocus(redraw) {
  const active = document.activeElement;
  const onScreen = active && active !== app() && app().contains(active);
  redraw();
  if (!onScreen || document.activeElement === active) return;
  const again = (active.id && document.getElementById(active.id)) || (active.isConnected && active) || $('#view-title') || app();
  again.focus({ preventScroll: true });
}

// A screen is drawn: the tab's title names it (WCAG 2.4.2). After a change of route, and only
// then (never on a live redraw), the focus moves to its heading (or `target`), at the top, so a
// keyboard or screen reader user goes on from there, not from <body> (2.4.3).
function arrived(title, target) {
  document.title = t('page_title', { view: title });
  if (!focusPending) return;
  focusPending = false;
  window.scrollTo(0, 0);
  (target || $('#view-title') || app()).focus({ preventScroll: true });
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

// A call of the staff API with the session (its access token refreshed when it expires); status
// 0 = offline. A session the server ended (refresh refused) signs the app out.
async function api(method, path, body) {
  const open = path === '/v1/auth/login' || path === '/v1/push/vapid-public-key';
  let response;
  try {
    response = open
      ? await fetch(path, {
        method,
        headers: { Accept: 'application/json, application/problem+json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      })
      : await Store.authFetch(method, path, body);
  } catch (_) {
    throw new ApiError(0, { detail: t('network_error') });
  }
  if (response.signedOut) {
    if (state.token) logout({ ended: true });
    throw new ApiError(401, { detail: t('session_ended') });
  }
  if (!open) await syncToken();
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { detail: text }; }
  if (!response.ok) {
    const err = new ApiError(response.status, data);
    err.retryAfter = Number(response.headers.get('Retry-After')) || null;
    throw err;
  }
  return data;
}

// The page's copy of the stored session's token and profile (a refresh may have changed them).
async function syncToken() {
  const session = await Store.kv.get('session');
  if (session) {
    state.token = session.access_token;
    state.staff = session.staff || state.staff;
  }
}

// ---------------------------------------------------------------- session

async function saveSession(body, installId) {
  const session = Store.sessionFrom(body, installId);
  await Store.kv.set('session', session);
  state.token = session.access_token;
  state.staff = session.staff;
}

// Sign out: the server ends the session (logout revokes the refresh token), the phone forgets it,
// its offline inbox and queue. `ended`: the server had ended it already (another sign-in
// elsewhere reused a copy, a password change, deactivation).
async function logout({ ended = false } = {}) {
  if (!ended) await forgetDevice();
  state.token = null;
  state.staff = null;
  state.alerts.clear();
  state.liveAt.clear();
  state.pending.clear();
  state.correcting.clear();
  state.detail = null;
  state.fleet = null;
  closeStream();
  document.body.dataset.view = 'login';
  lastRoute = 'login:';
  focusPending = true; // to the e-mail field: the screen signed out of is gone
  renderLogin(ended ? t('session_ended') : undefined);
  if (!ended) await Store.endSession();
  else await Promise.all([Store.alerts.clear(), Store.queue.clear()]);
  document.body.dataset.session = 'none';
}

// Signing out of a phone stops its pages: the device is removed on the server and the browser's
// subscription dropped (the next person to sign in registers it anew).
async function forgetDevice() {
  try {
    const deviceId = await Store.kv.get('device_id');
    if (deviceId) await Store.authFetch('DELETE', `/v1/devices/${encodeURIComponent(deviceId)}`);
    const reg = 'serviceWorker' in navigator ? await navigator.serviceWorker.getRegistration('/') : null;
    const sub = reg && reg.pushManager ? await reg.pushManager.getSubscription() : null;
    if (sub) await sub.unsubscribe();
  } catch (_) { /* offline: the device stays until its owner signs in again */ }
}

function setLang(lang) {
  state.lang = lang;
  localStorage.setItem('voc.lang', lang);
  Store.kv.set('lang', lang).catch(() => {});
  document.documentElement.lang = lang;
  renderChrome();
  if (!state.token) { route(); return; }
  // Signed in: the staff member's language in the directory first, so the screen read next
  // (titles, categories, plans) and the live stream come in it; then the screen, once. Offline,
  // the screen's language now and the directory's at the next switch.
  api('PUT', '/v1/auth/language', { language: lang })
    .then(() => { openStream(); }, () => {})
    .then(() => {
      if (state.lang !== lang) return; // a later switch draws its own
      route();
      if (currentRoute().view === 'inbox') refreshInbox();
    });
}

// ---------------------------------------------------------------- chrome (top bar)

function renderChrome() {
  const langBtn = $('#lang');
  langBtn.textContent = state.lang === 'ko' ? 'EN' : '한글';
  langBtn.setAttribute('aria-label', state.lang === 'ko' ? 'Switch to English' : '한국어로 보기');
  langBtn.lang = state.lang === 'ko' ? 'en' : 'ko'; // its words are the other language's (WCAG 3.1.2)
  const out = $('#logout');
  out.hidden = !state.token;
  out.textContent = t('logout');
  const live = $('#live');
  live.hidden = !state.token;
  const open = state.stream && state.stream.readyState === EventSource.OPEN;
  live.textContent = open ? t('live_on') : t('live_off');
  live.title = live.textContent;
  live.classList.toggle('on', Boolean(open));
  const note = $('#push-note');
  // On the inbox the blocked-notifications card says it with the steps; the bar says it elsewhere.
  const saidByCard = state.pushNote === 'push_denied' && currentRoute().view === 'inbox';
  note.hidden = !state.token || !state.pushNote || state.pushNoteDismissed || saidByCard;
  if (state.pushNote) $('#push-note-text').textContent = t(state.pushNote);
}

// ---------------------------------------------------------------- login

function renderLogin(message) {
  document.body.dataset.view = 'login';
  const error = h('p', { class: 'form-error', role: 'alert', id: 'login-error', hidden: !message }, message || '');
  const button = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, t('login'));
  const form = h(
    'form',
    { class: 'card login', id: 'login-form', novalidate: true, autocomplete: 'on' },
    h('h1', {}, t('login_title')),
    h('p', { class: 'muted' }, t('login_hint')),
    h('label', { for: 'email' }, t('email')),
    h('input', { id: 'email', name: 'email', type: 'email', autocomplete: 'username', inputmode: 'email', required: true }),
    h('label', { for: 'password' }, t('password')),
    h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    error,
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const email = form.email.value.trim();
    const password = form.password.value;
    button.disabled = true;
    button.textContent = t('logging_in');
    error.hidden = true;
    markInvalid(form, []);
    try {
      const installId = await Store.installId();
      const body = await api('POST', '/v1/auth/login', { email, password, install_id: installId });
      await saveSession(body, installId);
      if (body.staff && I18N[body.staff.language]) {
        state.lang = body.staff.language;
        localStorage.setItem('voc.lang', state.lang);
        document.documentElement.lang = state.lang;
      }
      await Store.kv.set('lang', state.lang);
      await startSession({ signedIn: true });
    } catch (err) {
      // In the user's language: the server's detail is English (a network failure keeps its own).
      let text = err.message;
      let invalid = [];
      if (err.status === 401) {
        text = t('login_wrong');
        invalid = [form.email, form.password];
      }
      if (err.status === 422) {
        // An empty field ("2 field(s) are invalid."), else one the server refused (a password
        // too short to be anyone's): that is a wrong password.
        invalid = [form.email, form.password].filter((input) => !input.value.trim());
        text = invalid.length ? t('login_invalid') : t('login_wrong');
        if (!invalid.length) invalid = refusedFields(form, err.problem.errors);
      }
      if (err.status === 429) {
        const wait = err.retryAfter || Number((/(\d+)\s*s/.exec(err.message) || [])[1]) || 0;
        text = wait ? t('locked', { s: wait }) : t('locked_now');
      }
      error.textContent = text;
      error.hidden = false;
      button.disabled = false;
      button.textContent = t('login');
      markInvalid(form, invalid);
      if (invalid.length) invalid[0].focus();
    }
  });
  keepingFocus(() => app().replaceChildren(form));
  renderChrome();
  arrived(t('login_title'), form.email);
}

// The fields a sign-in error is about (WCAG 3.3.1): marked invalid and described by the message;
// lockouts and network failures are about no field. The next attempt clears them.
function markInvalid(form, fields) {
  for (const input of [form.email, form.password]) {
    if (fields.includes(input)) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', 'login-error');
    } else {
      input.removeAttribute('aria-invalid');
      input.removeAttribute('aria-describedby');
    }
  }
}

// The fields a 422 names (`body.email`, `body.password`); both when it names neither.
function refusedFields(form, errors) {
  const named = (errors || []).map((e) => String(e.field || '').split('.').pop());
  const fields = [form.email, form.password].filter((input) => named.includes(input.name));
  return fields.length ? fields : [form.email, form.password];
}

// ---------------------------------------------------------------- inbox

function sortedAlerts() {
  return [...state.alerts.values()].sort((a, b) => (b.created_at - a.created_at) || (b.id > a.id ? 1 : -1));
}

function badge(status) {
  return h('span', { class: `badge badge-${status}`, dataset: { status } }, t(`status_${status}`));
}

function prioChip(priority) {
  return h('span', { class: `prio prio-${priority}` }, t(`prio_${priority}`));
}

// The classifier was not sure (#17): say so instead of letting its guess pass as fact.
function uncertainBadge(classification) {
  // A person's correction is no guess: the flag is the model's, and it was overruled.
  if (!classification || !classification.uncertain || classification.corrected) return null;
  return h('span', { class: 'flag-uncertain', dataset: { uncertain: 'true' }, title: t('uncertain_hint') }, t('uncertain'));
}

// Pattern alerts (several customers, one category) and heads-ups (a customer arriving) (#18).
function kindChip(kind) {
  if (!kind || kind === 'feedback') return null;
  return h('span', { class: `kind kind-${kind}`, dataset: { kind } }, t(`kind_${kind}`));
}

function pendingStep(alertId) {
  return state.pending.get(alertId) || (state.correcting.has(alertId) ? 'correct' : null);
}

function pendingBadge(alertId) {
  const step = pendingStep(alertId);
  return step ? h('span', { class: 'badge badge-pending', dataset: { pending: step } }, t('pending_sync')) : null;
}

function alertRow(a) {
  return h(
    'li',
    {},
    h(
      'a',
      {
        class: `alert-row prio-edge-${a.priority} status-${a.status}`,
        href: `#/alerts/${encodeURIComponent(a.id)}`,
        dataset: { alertId: a.id, feedbackId: a.feedback_id || '', status: a.status, kind: a.kind || 'feedback' },
      },
      h('div', { class: 'row-top' }, prioChip(a.priority), kindChip(a.kind), badge(a.status), pendingBadge(a.id), uncertainBadge(a.classification),
        h('time', { class: 'age', dataset: { created: a.created_at } }, ago(a.created_at))),
      h('div', { class: 'row-title' }, a.title),
      a.category ? h('div', { class: 'row-category', dataset: { category: a.category } }, lookup('categories', a.category)) : null,
      h('div', { class: 'row-body' }, a.body),
    ),
  );
}

// The inbox is drawn again on every live event and reload. Its list and the rows whose alert did
// not change stay in the document: a row replaced or moved between a tap's press and its release
// loses the tap (the CI of stop 32 saw a tap on a row open nothing while the reload was drawn).
function renderInbox() {
  document.body.dataset.view = 'inbox';
  document.body.dataset.answers = String(state.inboxAnswers);
  const list = sortedAlerts();
  const hello = state.staff && state.staff.name
    ? h('p', { class: 'muted hello' }, `${state.staff.name} · ${lookup('roles', state.staff.role)}`)
    : null;
  const problem = state.inboxError
    ? h('p', { class: 'form-error', id: 'inbox-error', role: 'alert' },
      state.inboxError === 'offline' ? `${t('offline')} ${list.length ? t('offline_copy') : ''}`.trim() : state.inboxError)
    : null;
  const section = app().querySelector(':scope > section.inbox');
  const shown = section && section.querySelector(':scope > #alert-list');
  // The heading stays too: focused (after a change of route), a new one would be read out again
  // on every live event.
  const drawn = section && section.querySelector(':scope > #view-title');
  const heading = drawn && drawn.textContent === t('inbox') ? drawn : h('h1', { id: 'view-title', tabindex: '-1' }, t('inbox'));
  const head = [heading, hello, fleetCard(), pushCard(), problem].filter(Boolean);
  keepingFocus(() => {
    if (!list.length || !shown) {
      const content = list.length
        ? keepRows(h('ul', { class: 'alert-list', id: 'alert-list' }), list)
        : h('p', { class: 'empty', id: 'alert-list-empty' }, t('inbox_empty'));
      app().replaceChildren(h('section', { class: 'inbox' }, ...head, content));
    } else {
      keepRows(shown, list);
      for (const node of [...section.childNodes]) if (node !== shown && node !== heading) node.remove();
      shown.before(...head.filter((node) => node !== heading));
      if (!heading.isConnected) section.prepend(heading);
    }
  });
  renderChrome();
  arrived(t('inbox'));
}

// What `alertRow` draws (a live event's summary and the inbox answer's carry the same alert in
// other shapes): a row whose values are the same is kept.
function rowShows(a) {
  const c = a.classification || {};
  return JSON.stringify([state.lang, a.id, a.feedback_id, a.priority, a.status, a.kind, a.created_at, a.title,
    a.category, lookup('categories', a.category), a.body, Boolean(c.uncertain && !c.corrected), pendingStep(a.id)]);
}

// `list`'s rows in `ul`: a row kept while what it shows is the same (its age is `tick`'s), the
// rows of alerts gone removed first, then only what moved is put in place.
function keepRows(ul, list) {
  const drawn = new Map([...ul.children].map((li) => [li.dataset.key, li]));
  const rows = list.map((a) => {
    const shows = rowShows(a);
    const kept = drawn.get(a.id);
    if (kept && kept.dataset.shows === shows) return kept;
    const li = alertRow(a);
    Object.assign(li.dataset, { key: a.id, shows });
    return li;
  });
  const keep = new Set(rows);
  for (const li of [...ul.children]) if (!keep.has(li)) li.remove();
  rows.forEach((li, i) => { if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null); });
  return ul;
}

async function loadInbox() {
  const asked = Date.now();
  let body;
  try {
    body = await api('GET', '/v1/alerts?limit=50');
  } catch (err) {
    state.inboxError = err.status === 0 ? 'offline' : err.message;
    if (err.status === 0) await loadSavedInbox();
    throw err;
  }
  state.inboxError = null;
  state.inboxAnswers += 1;
  // An alert a live event brought while this answer was on its way may be newer than it (the
  // stream reconnects and reloads the inbox as a new alert arrives): keep it, do not drop it.
  const arrived = [...state.alerts.values()].filter((a) => (state.liveAt.get(a.id) || 0) >= asked);
  state.alerts.clear();
  for (const a of body.alerts || []) { learnLabel(a); state.alerts.set(a.id, a); }
  for (const a of arrived) if (!state.alerts.has(a.id)) state.alerts.set(a.id, a);
  Store.alerts.putSummaries(body.alerts || []).catch(() => {});
}

// Offline: the alerts kept on the phone (the last ones loaded, pushed or opened).
async function loadSavedInbox() {
  const saved = await Store.alerts.all().catch(() => []);
  state.alerts.clear();
  for (const r of saved) if (r.summary && r.summary.title) { learnLabel(r.summary); state.alerts.set(r.id, r.summary); }
}

// ---------------------------------------------------------------- fleet (managers)

const MANAGER_ROLES = ['store_manager', 'area_manager', 'cx_admin'];

function isManager() {
  return Boolean(state.staff && MANAGER_ROLES.includes(state.staff.role));
}

async function loadFleet() {
  if (!isManager()) return null;
  try {
    state.fleet = await api('GET', '/v1/fleet');
  } catch (_) { /* offline or not allowed: no card */ }
  return state.fleet;
}

function fleetCard() {
  const f = state.fleet;
  if (!f || !isManager()) return null;
  const text = f.cannot_receive
    ? t('fleet_summary', { n: f.cannot_receive, total: f.staff_count })
    : t('fleet_all_ok', { total: f.staff_count });
  return h('a', { class: `fleet-card ${f.cannot_receive ? 'fleet-bad' : 'fleet-ok'}`, id: 'fleet-summary', href: '#/fleet' }, text);
}

function renderFleet() {
  document.body.dataset.view = 'fleet';
  const f = state.fleet || { staff: [] };
  const problems = t('fleet_problems') || {};
  const rows = (f.staff || []).map((p) => h('li', { class: `fleet-row ${p.can_receive ? 'ok' : 'bad'}`, dataset: { staffId: p.staff_id } },
    h('div', { class: 'row-top' }, h('strong', {}, p.name), h('span', { class: 'muted' }, lookup('roles', p.role))),
    h('div', { class: 'muted' }, p.last_shown_at ? t('fleet_last_shown', { when: ago(p.last_shown_at) }) : t('fleet_never'),
      ...(p.installs || []).slice(0, 1).map((i) => ` · ${t('fleet_version', { v: i.app_version })}`)),
    p.problems.length ? h('ul', { class: 'fleet-problems' }, p.problems.map((k) => h('li', {}, problems[k] || k))) : null));
  keepingFocus(() => app().replaceChildren(h('section', { class: 'fleet' },
    h('a', { class: 'back', id: 'back', href: '#/' }, `← ${t('back')}`),
    h('h1', { id: 'view-title', tabindex: '-1' }, t('fleet_title')), fleetCard(),
    h('ul', { class: 'fleet-list', id: 'fleet-list' }, rows))));
  renderChrome();
  arrived(t('fleet_title'));
}

// ---------------------------------------------------------------- detail

function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

function kv(label, value) {
  return value === null || value === undefined || value === ''
    ? null
    : h('div', { class: 'kv' }, h('dt', {}, label), h('dd', {}, value));
}

function percent(value) {
  return typeof value === 'number' ? `${Math.round(value * 100)}%` : null;
}

function feedbackCard(fb, classification) {
  const cls = classification || {};
  const ratings = fb.ratings || {};
  const chips = [];
  if (ratings.csat !== undefined) chips.push(`CSAT ${ratings.csat}/5`);
  if (ratings.nps !== undefined) chips.push(`NPS ${ratings.nps}/10`);
  if (ratings.ces !== undefined) chips.push(`CES ${ratings.ces}/7`);
  return section(
    t('feedback'),
    // An unhappy follow-up answer: the customer's case is open again, not a new complaint.
    fb.reopens_id ? h('p', { class: 'uncertain-note', id: 'reopened-note', role: 'note' }, t('reopened_hint')) : null,
    cls.uncertain && !cls.corrected ? h('p', { class: 'uncertain-note', id: 'uncertain-note', role: 'note' }, t('uncertain_hint')) : null,
    h('blockquote', { class: 'fb-text', id: 'feedback-text' }, fb.text || t('no_text')),
    chips.length ? h('div', { class: 'chips', id: 'ratings' }, chips.map((c) => h('span', { class: 'chip chip-rating' }, c))) : null,
    h('dl', { class: 'kvs' },
      kv(t('category'), lookup('categories', cls.category || fb.category)),
      kv(t('category_confidence'), cls.corrected ? null : percent(cls.category_confidence)),
      kv(t('severity'), fb.severity ? lookup('severities', fb.severity) : null),
      kv(t('sentiment'), (cls.sentiment || fb.sentiment) ? lookup('sentiments', cls.sentiment || fb.sentiment) : null),
      kv(t('confidence'), cls.corrected ? null : percent(cls.confidence)),
      kv(t('channel'), fb.channel ? lookup('channels', fb.channel) : null)),
  );
}

// One-tap correction of the labels (#17): a sentiment chip or a category from the picker is
// sent at once (POST /v1/alerts/{id}/corrections; feedback decides and keeps it).
const SENTIMENTS = ['negative', 'neutral', 'positive'];

function correctionCard(alert) {
  const cls = alert.classification || {};
  const fb = alert.feedback || {};
  // Corrections made offline and not sent yet show as chosen, marked pending sync.
  const queued = state.correcting.get(alert.id);
  const sentiment = (queued && queued.sentiment) || cls.sentiment || fb.sentiment;
  const category = (queued && queued.category) || cls.category || alert.category;
  const msg = messageBox('correct-msg');
  const send = async (labels, control) => {
    control.disabled = true;
    try {
      const done = await api('POST', `/v1/alerts/${encodeURIComponent(alert.id)}/corrections`, labels);
      // The screen may be a newer copy than this card's (a refresh that changed nothing visible
      // keeps the elements, and so this closure): correct the newest.
      const current = state.detail && state.detail.id === alert.id ? state.detail : alert;
      showCorrected(current, done);
      const flash = [t('corrected_ok'), 'ok'];
      renderDetail(current, flash);
      settled(alert.id, flash, control.id);
    } catch (err) {
      control.disabled = false;
      if (err.status === 0) {
        // Offline (#23): kept on the phone with the acknowledgements and resolves, sent in order
        // when the connection is back (feedback answers a repeat with the correction in force).
        await Store.queue.add({ kind: 'correct', alert_id: alert.id, body: labels });
        state.correcting.set(alert.id, { ...(state.correcting.get(alert.id) || {}), ...labels });
        registerSync();
        const flash = [t('queued_correct'), 'warn'];
        renderDetail(state.detail || alert, flash);
        settled(alert.id, flash, control.id);
      } else {
        msg.show(t('correct_failed', { detail: err.message }), 'error');
      }
    }
  };
  const chips = SENTIMENTS.map((value) => {
    const chip = h('button', {
      type: 'button',
      id: `sentiment-${value}`,
      class: `chip chip-choice${value === sentiment ? ' chip-selected' : ''}`,
      dataset: { sentiment: value },
      'aria-pressed': value === sentiment ? 'true' : 'false',
    }, lookup('sentiments', value));
    chip.addEventListener('click', () => { if (value !== sentiment) send({ sentiment: value }, chip); });
    return chip;
  });
  const choices = alert.categories ? alert.categories.map((c) => [c.id, c.label]) : Object.entries(t('categories'));
  const picker = h('select', { id: 'correct-category', 'aria-label': t('correct_category') },
    choices.map(([value, label]) => {
      const option = h('option', { value }, label);
      if (value === category) option.selected = true;
      return option;
    }));
  picker.addEventListener('change', () => { if (picker.value !== category) send({ category: picker.value }, picker); });
  const corrected = cls.corrected;
  const before = corrected
    ? [corrected.previous_sentiment && lookup('sentiments', corrected.previous_sentiment),
      corrected.previous_category && lookup('categories', corrected.previous_category)].filter(Boolean).join(' · ')
    : '';
  return h('section', { class: 'card', id: 'correct-card' },
    h('h2', {}, t('correct_title')),
    h('p', { class: 'hint' }, t('correct_hint')),
    queued ? h('p', { class: 'pending-note', id: 'correct-pending' }, `${t('pending_sync')}: ${t('step_correct')}`) : null,
    h('div', { class: 'chips', id: 'correct-sentiment', role: 'group', 'aria-label': t('sentiment') }, chips),
    h('label', { class: 'field' }, t('category'), picker),
    corrected
      ? h('p', { class: 'corrected-note', id: 'corrected-note' },
        t('corrected_by', { who: who(corrected.by), at: clock(corrected.at), before }))
      : null,
    msg);
}

// Feedback's answer to a correction, shown at once; the alert itself follows when feedback's
// event comes back.
function showCorrected(alert, done) {
  const c = done.correction || {};
  alert.classification = {
    ...(alert.classification || {}), sentiment: done.sentiment, category: done.category,
    corrected: { by: c.by, at: c.at, previous_sentiment: c.previous_sentiment, previous_category: c.previous_category },
  };
  alert.category = done.category;
  // The detail's category_label named the category before this correction; renderDetail learns
  // labels from it, so it must follow the category (or '청결' would read as the old one).
  const published = (alert.categories || []).find((c) => c.id === done.category);
  if (published) alert.category_label = published.label;
  else delete alert.category_label;
  if (state.detail && state.detail.id === alert.id) state.detail = alert;
  const row = { ...(state.alerts.get(alert.id) || {}), category: done.category, classification: alert.classification };
  delete row.category_labels; // they were the old category's; the alert's next event brings the new ones
  state.alerts.set(alert.id, row);
}

function customerCard(c, category) {
  if (!c || !c.known) {
    return section(t('customer'), h('p', { class: 'muted', id: 'customer-anon' }, t('anonymous')));
  }
  const s = c.signals || {};
  const chips = [];
  if (s.vip && String(c.tier).toLowerCase() !== 'vip') chips.push(['vip', t('sig_vip')]);
  const repeat = (s.repeat_counts || {})[category] || 0;
  if (s.repeat_issue || repeat >= 2) chips.push(['warn', repeat ? t('sig_repeat', { n: repeat }) : t('sig_repeat_plain')]);
  if (s.score_swing) {
    const d = s.score_swing_delta ? (s.score_swing_delta > 0 ? '+' : '') + s.score_swing_delta : '';
    chips.push(['warn', t('sig_swing', { d })]);
  }
  if (s.churn_risk) chips.push(['danger', t('sig_churn')]);
  if (s.chronic_complainer) chips.push(['warn', t('sig_chronic')]);
  if (s.low_satisfaction) chips.push(['warn', t('sig_low')]);
  const reasons = (s.reasons || []).filter((r) => r && (r.text || r.reason));
  const visits = (c.last_visits || []).slice(0, 3);
  const household = c.household && c.household.relation ? c.household : null;
  return section(
    t('customer'),
    h('div', { class: 'cust-head' },
      h('span', { class: 'cust-name', id: 'customer-name' }, c.masked_name || '—'),
      c.tier ? h('span', { class: `tier tier-${c.tier}` }, String(c.tier).toUpperCase()) : null),
    chips.length ? h('div', { class: 'chips', id: 'signals' }, chips.map(([k, text]) => h('span', { class: `chip chip-${k}` }, text))) : null,
    reasons.length ? h('ul', { class: 'reasons', id: 'reasons' }, reasons.map((r) => h('li', {}, r.text || r.reason))) : null,
    household ? h('p', { class: 'household', id: 'household' }, h('strong', {}, `${t('household')} `), t('household_of', {
      relation: lookup('relations', household.relation),
      members: (household.members || []).map((m) => `${m.masked_name} (${lookup('relations', m.relation)})`).join(', ') || '—',
    })) : null,
    h('dl', { class: 'kvs' },
      kv(t('phone'), c.masked_phone || null),
      kv(t('feedback_count'), c.feedback_count || null),
      kv(t('mean_csat'), c.mean_csat ? Number(c.mean_csat).toFixed(1) : null)),
    h('h3', {}, t('last_visits')),
    visits.length
      ? h('ul', { class: 'visits' }, visits.map((v) => h('li', {},
        h('span', {}, clock(v.visited_at_ms / 1000)),
        h('span', { class: 'muted' }, v.store_name || v.store_id || ''),
        v.amount ? h('span', {}, money(v.amount, 'KRW')) : null)))
      : h('p', { class: 'muted' }, t('no_visits')),
    storyTimeline(c.recent_contacts || []),
  );
}

// A contact's case status in the reader's words (an unknown one as a word, not a label key).
function contactStatus(status) {
  const key = `contact_${status}`;
  const text = t(key);
  return text === key ? String(status || '').replace(/_/g, ' ') : text;
}

// The customer's earlier contacts, newest first: when, where, about what, how it ended, and
// what they said (masked by profile).
function storyTimeline(contacts) {
  const title = h('h3', {}, t('story'));
  if (!contacts.length) return h('div', { class: 'story' }, title, h('p', { class: 'muted', id: 'no-story' }, t('no_story')));
  return h('div', { class: 'story' }, title, h('ol', { class: 'timeline', id: 'recent-contacts' }, contacts.map((c) => h(
    'li',
    { class: `contact contact-${c.sentiment || 'neutral'}`, dataset: { feedbackId: c.feedback_id } },
    h('div', { class: 'contact-head' },
      h('time', {}, clock(c.occurred_at_ms / 1000)),
      h('span', { class: 'contact-where' }, `${lookup('channels', c.channel)} · ${c.store_name || c.store_id}`)),
    h('div', { class: 'contact-what' },
      h('span', { class: 'contact-category' }, lookup('categories', c.category)),
      h('span', { class: `contact-status status-${c.status}` },
        contactStatus(c.status) + (c.outcome ? ` · ${OUTCOMES.includes(c.outcome) ? t(`out_${c.outcome}`) : c.outcome}` : ''))),
    c.excerpt ? h('q', { class: 'contact-excerpt' }, c.excerpt) : null,
  ))));
}

// A pattern alert's items (newest first), or a heads-up's arriving customer and why (#18).
function itemsCard(alert) {
  const items = alert.items || [];
  if (alert.kind === 'pattern') {
    const n = ((alert.customer || {}).pattern || {}).customers || items.length;
    return section(t('pattern_items', { n }), h('ul', { class: 'pattern-items', id: 'pattern-items' },
      items.map((i) => h('li', { dataset: { feedbackId: i.feedback_id } },
        h('time', {}, clock(i.at)), ' ',
        i.alert_id ? h('a', { href: `#/alerts/${encodeURIComponent(i.alert_id)}` }, i.excerpt || '—') : (i.excerpt || '—')))));
  }
  if (alert.kind === 'heads_up' && items.length) {
    const a = items[0];
    const reasons = a[`reasons_${state.lang}`] || a.reasons_en || [];
    return section(t('arrival'), h('div', { class: 'cust-head' },
      h('span', { class: 'cust-name', id: 'arrival-name' }, a.masked_name || '—'),
      a.tier ? h('span', { class: `tier tier-${a.tier}` }, String(a.tier).toUpperCase()) : null),
    h('ul', { class: 'reasons', id: 'arrival-reasons' }, reasons.map((r) => h('li', {}, r))));
  }
  return null;
}

// Which steps are ticked, by index: what a live checklist event is compared on (who and when
// may differ between the answer to a tick and the event the same tick sent).
function ticks(checklist) {
  return (checklist || []).filter((s) => s.done).map((s) => s.index).sort((a, b) => a - b).join(',');
}

function markTick(checklist, index, done) {
  const rest = (checklist || []).filter((s) => s.index !== index);
  return [...rest, { index, done }];
}

async function tickStep(alert, index, box) {
  // Noted before the request: the live echo of this tick may arrive before its answer.
  if (state.detail && state.detail.id === alert.id) {
    state.detail.checklist = markTick(state.detail.checklist, index, box.checked);
  }
  try {
    const answer = await api('PUT', `/v1/alerts/${encodeURIComponent(alert.id)}/steps/${index}`, { done: box.checked });
    alert.checklist = answer.checklist;
    // The open detail may be another copy of the alert (the offline inbox's): keep both in step,
    // or the live `alert.checklist` echo of this very tick would redraw the page under the tap.
    if (state.detail && state.detail.id === alert.id) state.detail.checklist = answer.checklist;
    box.closest('li').dataset.done = String(box.checked);
  } catch (err) {
    box.checked = !box.checked;
    if (state.detail && state.detail.id === alert.id) {
      state.detail.checklist = markTick(state.detail.checklist, index, box.checked);
    }
    toast(t('step_save_failed', { detail: err.message }), 'error');
  }
}

function planCard(alert) {
  const plan = alert.plan || {};
  const states = new Map((alert.checklist || []).map((s) => [s.index, s]));
  const closed = alert.status === 'resolved' || !!alert.read_only;
  const steps = (plan.steps || []).map((step, i) => {
    const text = typeof step === 'string' ? step : step.text;
    const role = typeof step === 'string' ? null : step.role;
    const mark = states.get(i) || {};
    const box = h('input', { type: 'checkbox', id: `step-${i}`, checked: !!mark.done, disabled: closed });
    box.addEventListener('change', () => tickStep(alert, i, box));
    return h('li', { class: 'step', dataset: { index: String(i), done: String(!!mark.done) } },
      h('label', { for: `step-${i}` }, box,
        h('span', { class: 'step-text' }, text),
        role ? h('span', { class: 'role' }, lookup('roles', role)) : null,
        mark.done && mark.done_by ? h('span', { class: 'muted step-by' }, `${who(mark.done_by)} · ${clock(mark.at)}`) : null));
  });
  const log = alert.checklist_log || [];
  const comp = plan.compensation;
  const sla = plan.sla || {};
  const why = (plan.matched || []).length ? plan.matched.map(reasonLine) : (plan.matched_because || []);
  return section(
    t('plan'),
    h('div', { class: 'plan-head' }, prioChip(plan.priority || alert.priority),
      h('strong', { id: 'plan-title' }, plan.title || '')),
    h('ol', { class: 'steps', id: 'plan-steps' }, steps),
    plan.script ? h('div', { class: 'script' }, h('h3', {}, t('script')), h('p', { id: 'plan-script' }, plan.script)) : null,
    h('dl', { class: 'kvs' },
      kv(t('compensation'), comp && comp.max_amount
        ? `${money(comp.max_amount, comp.currency)} · ${t('compensation_by', { role: lookup('roles', comp.authority) })}`
        : t('no_compensation')),
      kv(t('sla'), sla.ack_seconds || sla.resolve_seconds
        ? `${t('sla_ack', { t: duration(sla.ack_seconds) })} · ${t('sla_resolve', { t: duration(sla.resolve_seconds) })}`
        : null)),
    why.length ? h('details', { class: 'why' }, h('summary', {}, t('why')),
      h('ul', { id: 'plan-why' }, why.map((w) => h('li', {}, typeof w === 'string' ? w : JSON.stringify(w))))) : null,
    log.length ? h('details', { class: 'why', id: 'checklist-log' }, h('summary', {}, t('checklist_log')),
      h('ul', {}, log.map((m) => h('li', {}, `${clock(m.at)} · ${who(m.staff_id)} · #${m.index + 1} ${m.done ? '✓' : '✗'}`)))) : null,
  );
}

function messageBox(id) {
  const el = h('p', { class: 'action-msg', id, role: 'status', hidden: true });
  el.show = (text, kind) => {
    el.textContent = text;
    el.className = `action-msg msg-${kind}`;
    el.hidden = false;
  };
  return el;
}

// One condition the plan matched on, in the reader's words ("심각도: 높음 또는 심각 (높음)"): the
// playbook's `when:` as data (plan.matched), its keys and values through the language file.
const VALUE_GROUPS = { category: 'categories', severity: 'severities', sentiment: 'sentiments', channel: 'channels',
  'customer.household_relation': 'relations', 'store.format': 'store_formats' };
function reasonValue(key, value) {
  if (VALUE_GROUPS[key]) return lookup(VALUE_GROUPS[key], value);
  if (key === 'customer.tier') return String(value).toUpperCase();
  if (key === 'time.weekdays') return (t('weekdays') || {})[value] || value;
  return value;
}
function reasonLine(m) {
  const modifier = m.modifier ? `${t('why_modifier')} · ` : '';
  if (m.key.startsWith('signals.')) {
    const name = (t('signal_names') || {})[m.key.slice(8)] || m.key.slice(8).replace(/_/g, ' ');
    return modifier + (m.values[0] === 'false' ? t('why_not', { what: name }) : name);
  }
  const label = (t('condition_keys') || {})[m.key] || m.key;
  // A true/false condition of its own (not a signal) reads as its label: "재오픈된 사례".
  if (m.key === 'feedback.reopened') return modifier + (m.values[0] === 'false' ? t('why_not', { what: label }) : label);
  const values = m.values.map((v) => reasonValue(m.key, v)).join(t('or'));
  const actual = m.actual && (m.values.length > 1 || m.key.startsWith('time.')) ? ` (${reasonValue(m.key, m.actual)})` : '';
  return `${modifier}${label}: ${values}${actual}`;
}

// A staff member by name: the open alert's `staff_names` (the directory's), else their id.
function who(staffId) {
  if (!staffId) return '—';
  if (state.staff && staffId === state.staff.id) return `${state.staff.name || staffId} (${t('you')})`;
  return ((state.detail || {}).staff_names || {})[staffId] || staffId;
}

// [top card: acknowledge / who did what, bottom card: the resolve form or null]
function actionsCard(alert) {
  const topMsg = messageBox('action-msg');
  const parts = [];
  const act = async (button, msgBox, request, okText, queued) => {
    button.disabled = true;
    let flash = [okText, 'ok'];
    try {
      await request();
      await openDetail(alert.id, { flash });
      settled(alert.id, flash, button.id);
    } catch (err) {
      if (err.status === 0 && queued) {
        // Offline: kept on the phone and sent when the connection is back.
        await Store.queue.add({ ...queued, alert_id: alert.id });
        state.pending.set(alert.id, queued.kind);
        registerSync();
        flash = [t(`queued_${queued.kind}`), 'warn'];
        renderDetail(state.detail || alert, flash);
        settled(alert.id, flash, button.id);
      } else if (err.status === 409) {
        // Someone else was quicker: not an error, just show the current state.
        flash = [t('already', { detail: err.message }), 'warn'];
        await openDetail(alert.id, { flash });
        settled(alert.id, flash, button.id);
      } else {
        msgBox.show(err.message, 'error');
        button.disabled = false;
      }
    }
  };
  if (alert.acknowledged_at) {
    parts.push(h('p', { class: 'muted', id: 'acked-by' }, t('acked_by', { who: who(alert.acknowledged_by), when: clock(alert.acknowledged_at) })));
  }
  if (alert.status === 'resolved') {
    parts.push(h('p', { class: 'muted' }, t('resolved_by', { who: who(alert.resolved_by), when: clock(alert.resolved_at) })));
    parts.push(h('p', { id: 'resolved-outcome', class: 'outcome' }, t('resolved_info', { outcome: t(`out_${alert.outcome}`) })));
    if (alert.note) parts.push(h('blockquote', { class: 'note', id: 'resolved-note' }, alert.note));
    return [h('section', { class: 'card actions' }, topMsg, ...parts), null];
  }
  if (alert.read_only) {
    // A copy for the staff member's department: the store's staff act on it (the API says 403).
    parts.push(h('p', { class: 'muted', id: 'read-only' }, t('read_only_copy')));
    return [h('section', { class: 'card actions' }, topMsg, ...parts), null];
  }
  if (state.pending.has(alert.id)) {
    parts.push(h('p', { class: 'pending-note', id: 'pending-sync' }, `${t('pending_sync')}: ${t(`step_${state.pending.get(alert.id)}`)}`));
    return [h('section', { class: 'card actions' }, topMsg, ...parts), null];
  }
  if (alert.status === 'open') {
    const ackBtn = h('button', { type: 'button', class: 'btn btn-primary btn-block', id: 'ack-btn' }, t('acknowledge'));
    ackBtn.addEventListener('click', () => act(ackBtn, topMsg,
      () => api('POST', `/v1/alerts/${encodeURIComponent(alert.id)}/ack`), t('acknowledged_msg'), { kind: 'ack' }));
    parts.push(ackBtn);
  }
  const bottomMsg = messageBox('resolve-msg');
  const select = h('select', { id: 'outcome', name: 'outcome', required: true },
    h('option', { value: '', selected: true }, t('choose_outcome')),
    OUTCOMES.map((o) => h('option', { value: o }, t(`out_${o}`))));
  const note = h('textarea', { id: 'note', name: 'note', rows: 3, maxlength: 2000, placeholder: t('note_ph') });
  // Why the button is off: said next to it, and tied to it, until an outcome is picked.
  const hint = h('p', { class: 'hint', id: 'resolve-hint' }, t('resolve_pick_outcome'));
  const resolveBtn = h('button', { type: 'submit', class: 'btn btn-success btn-block', id: 'resolve-btn', disabled: true,
    'aria-describedby': 'resolve-hint' }, t('resolve'));
  select.addEventListener('change', () => {
    resolveBtn.disabled = !select.value;
    hint.hidden = !!select.value;
    if (select.value) resolveBtn.removeAttribute('aria-describedby');
    else resolveBtn.setAttribute('aria-describedby', 'resolve-hint');
  });
  const form = h('form', { class: 'resolve-form', id: 'resolve-form' },
    h('label', { for: 'outcome' }, t('outcome')), select,
    h('label', { for: 'note' }, t('note')), note, bottomMsg, hint, resolveBtn);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!select.value) return;
    const body = { outcome: select.value, note: note.value.trim() };
    act(resolveBtn, bottomMsg,
      () => api('POST', `/v1/alerts/${encodeURIComponent(alert.id)}/resolve`, body),
      t('resolved_msg'), { kind: 'resolve', body });
  });
  return [
    h('section', { class: 'card actions' }, topMsg, ...parts),
    h('section', { class: 'card actions', id: 'resolve-card' }, h('h2', {}, t('resolve_title')), form),
  ];
}

function renderDetail(alert, flash) {
  document.body.dataset.view = 'detail';
  // An action's message stays on screen for a few seconds through whatever re-renders the
  // alert meanwhile (its live event, a refresh that was under way).
  const now = Date.now();
  if (flash) state.lastFlash = { id: alert.id, flash, at: now };
  else if (state.lastFlash && state.lastFlash.id === alert.id && now - state.lastFlash.at < FLASH_KEPT_MS) {
    flash = state.lastFlash.flash;
  }
  for (const c of alert.categories || []) publishedLabels[c.id] = c.label;
  if (alert.category_label) publishedLabels[alert.category] = alert.category_label;
  const degraded = alert.degraded || [];
  const [actionsTop, resolveBottom] = actionsCard(alert);
  const view = h(
    'article',
    { class: 'detail', id: 'detail', dataset: { alertId: alert.id, feedbackId: alert.feedback_id || '', status: alert.status, kind: alert.kind || 'feedback' } },
    h('a', { class: 'back', id: 'back', href: '#/' }, `← ${t('back')}`),
    h('header', { class: `detail-head prio-edge-${alert.priority}` },
      h('div', { class: 'row-top' }, prioChip(alert.priority), kindChip(alert.kind), badge(alert.status), pendingBadge(alert.id), uncertainBadge(alert.classification),
        h('time', { class: 'age', dataset: { created: alert.created_at } }, ago(alert.created_at))),
      h('h1', { class: 'detail-title', id: 'view-title', tabindex: '-1' }, alert.title)),
    degraded.length
      ? h('div', { class: 'warning', id: 'degraded', role: 'alert' }, h('strong', {}, t('degraded')),
        h('ul', {}, degraded.map((d) => h('li', {}, t(`degraded_${d}`)))))
      : null,
    flash ? h('p', { class: `flash msg-${flash[1]}`, id: 'flash', role: 'status', tabindex: '-1' }, flash[0]) : null,
    actionsTop,
    itemsCard(alert),
    alert.kind === 'pattern' || alert.kind === 'heads_up' ? null : feedbackCard(alert.feedback || {}, alert.classification),
    alert.kind === 'pattern' || alert.kind === 'heads_up' ? null : correctionCard(alert),
    alert.kind === 'pattern' ? null : customerCard(alert.customer, alert.category),
    planCard(alert),
    resolveBottom,
  );
  // Nothing visible changed (a refresh after the push set-up or an empty replay, an event the
  // screen already shows): keep the elements on screen, so a tap on a button or the category
  // picker is not lost to a copy that replaced it mid-tap.
  const shown = document.getElementById('detail');
  if (shown && shown.isConnected && shown.isEqualNode(view)) {
    renderChrome();
    arrived(alert.title);
    return;
  }
  keepingFocus(() => app().replaceChildren(view));
  renderChrome();
  arrived(alert.title);
}

// An action's outcome (acknowledged, resolved, corrected, kept offline, someone was quicker),
// once it is drawn: said through the live region (the flash came with a new screen, which screen
// readers do not read out), and the focus stays on the control acted on, or, gone with the
// redraw (the acknowledge button), goes to the message rather than to <body>.
function settled(alertId, flash, controlId) {
  announce(flash[0]);
  const r = currentRoute();
  if (r.view !== 'detail' || r.id !== alertId) return; // the user went on meanwhile
  const active = document.activeElement;
  if (active && active !== document.body && !app().contains(active)) return; // in the top bar, say
  if (active && controlId && active.id === controlId) return; // kept by the redraw
  const control = controlId && document.getElementById(controlId);
  const target = control && !control.disabled ? control : $('#flash');
  if (target) target.focus();
}

async function openDetail(id, { flash = null, receipt = false } = {}) {
  // A live event for this alert may re-render it right after an action: keep that action's
  // message on screen for a few seconds instead of letting the refresh wipe it.
  if (flash) state.lastFlash = { id, flash, at: Date.now() };
  try {
    let alert;
    try {
      alert = await api('GET', `/v1/alerts/${encodeURIComponent(id)}`);
      Store.alerts.putDetail(alert).catch(() => {});
    } catch (err) {
      const saved = err.status === 0 ? await Store.alerts.get(id).catch(() => null) : null;
      if (!saved || !saved.detail) throw err;
      alert = { ...saved.detail, ...(saved.summary || {}) }; // offline: the copy kept on the phone
      if (!flash) flash = [t('offline_copy'), 'warn'];
    }
    const shown = state.detail && state.detail.id === id ? state.detail : null;
    if (shown && correctedAt(alert.classification) < correctedAt(shown.classification)) {
      // A correction on screen from feedback's own answer that notify has not heard from the
      // bus yet (a refresh that raced it): the newer labels stay, the event brings them anyway.
      alert = { ...alert, classification: shown.classification, category: shown.category, category_label: shown.category_label };
    }
    state.detail = alert;
    state.alerts.set(alert.id, summaryOf(alert));
    if (currentRoute().id !== id) return; // the user navigated away meanwhile
    // renderDetail keeps a recent action's message: decided at render time, as a refresh that
    // started before the action may finish after it.
    renderDetail(alert, flash);
    if (flash) window.scrollTo(0, 0);
    if (receipt) {
      api('POST', `/v1/alerts/${encodeURIComponent(id)}/receipts`, { kind: 'opened' }).catch(() => {});
    }
  } catch (err) {
    if (!state.token) return;
    document.body.dataset.view = 'detail-error';
    keepingFocus(() => app().replaceChildren(h('section', { class: 'card' },
      h('a', { class: 'back', id: 'back', href: '#/' }, `← ${t('back')}`),
      h('p', { class: 'form-error' }, t('load_failed', { detail: err.message })))));
    arrived(t('load_failed_title'));
  }
}

function summaryOf(alert) {
  const keys = ['id', 'feedback_id', 'store_id', 'category', 'category_labels', 'priority', 'status', 'title', 'body',
    'created_at', 'acknowledged_at', 'resolved_at', 'escalation_level', 'classification'];
  return Object.fromEntries(keys.map((k) => [k, alert[k]]));
}

// ---------------------------------------------------------------- live stream (SSE)

function closeStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
  state.streamOpening += 1;
  clearTimeout(state.streamTimer);
}

function retryStream() {
  state.streamRetry += 1;
  const delay = Math.min(30000, 1000 * 2 ** Math.min(state.streamRetry, 5));
  const opening = state.streamOpening;
  state.streamTimer = setTimeout(() => { if (state.token && state.streamOpening === opening) openStream(); }, delay);
}

async function openStream() {
  closeStream();
  if (!state.token) return;
  const opening = state.streamOpening;
  // EventSource cannot send the Authorization header: a single-use ticket opens the stream,
  // so the access token never appears in a URL.
  let ticket;
  try {
    ({ ticket } = await api('POST', '/v1/alerts/stream-ticket'));
  } catch (_) {
    if (state.token && state.streamOpening === opening) retryStream();
    return;
  }
  if (!state.token || state.streamOpening !== opening) return; // closed or reopened meanwhile
  const es = new EventSource(`/v1/alerts/stream?ticket=${encodeURIComponent(ticket)}`);
  state.stream = es;
  es.addEventListener('open', () => {
    document.body.dataset.stream = 'open';
    // Fill the gap: alerts raised while disconnected, or (first open) between the inbox's
    // first load and this moment, reach no stream.
    refreshInbox();
    state.streamRetry = 0;
    renderChrome();
  });
  es.addEventListener('error', () => {
    document.body.dataset.stream = 'down';
    // The browser would reconnect with the same ticket, which is used up: reconnect with a new
    // one, backing off.
    es.close();
    renderChrome();
    if (state.stream === es) retryStream();
  });
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (event) => {
      let data;
      try { data = JSON.parse(event.data); } catch (_) { return; }
      onAlertEvent(data.type || type, data.alert);
    });
  }
}

function onAlertEvent(type, summary) {
  if (!summary || !summary.id) return;
  if (type === 'alert.checklist') {
    // Someone ticked a step (#18): the open detail shows it, unless it already does.
    const { checklist, ...rest } = summary;
    const r0 = currentRoute();
    if (r0.view === 'detail' && r0.id === summary.id && state.detail &&
        ticks(state.detail.checklist) !== ticks(checklist)) openDetail(summary.id);
    summary = rest;
  }
  learnLabel(summary);
  const isNew = !state.alerts.has(summary.id);
  state.alerts.set(summary.id, { ...(state.alerts.get(summary.id) || {}), ...summary });
  state.liveAt.set(summary.id, Date.now());
  document.body.dataset.lastEvent = `${type}:${summary.id}`;
  const r = currentRoute();
  if (r.view === 'inbox') renderInbox();
  else if (r.view === 'detail' && r.id === summary.id && state.detail && (state.detail.status !== summary.status ||
    // A correction made elsewhere (another phone, the dashboard); an older one arriving late is not.
    correctedAt(summary.classification) > correctedAt(state.detail.classification))) {
    openDetail(summary.id);
  }
  if (type === 'alert.created' && isNew) {
    // On the inbox the new row shows it (a toast would say it twice), but only to the eye: said
    // to screen readers through the live region.
    const text = `${t('new_alert')}: ${summary.title}`;
    if (r.view === 'inbox') announce(text);
    else toast(text);
  }
}

function correctedAt(classification) {
  return ((classification || {}).corrected || {}).at || 0;
}

async function refreshInbox() {
  try {
    await loadInbox();
  } catch (_) { /* shown in the inbox */ }
  if (state.token && currentRoute().view === 'inbox') renderInbox();
}

// ---------------------------------------------------------------- push (asked from a tap, fails soft)

function b64urlToBytes(value) {
  const pad = '='.repeat((4 - (value.length % 4)) % 4);
  const raw = atob((value + pad).replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function withTimeout(promise, ms, what) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} timed out`)), ms))]);
}

// iOS and iPadOS only give Web Push to a Home Screen app, asked from a tap.
function isIos() {
  const ua = navigator.userAgent || '';
  return /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
}

function isStandalone() {
  return Boolean(navigator.standalone) || window.matchMedia('(display-mode: standalone)').matches;
}

function permissionState() {
  return 'Notification' in window ? Notification.permission : 'unsupported';
}

function setPushNote(key) {
  state.pushNote = key;
  document.body.dataset.push = key === 'push_ok' ? 'on' : key === 'push_denied' ? 'denied' : 'unavailable';
  renderChrome();
}

// What the inbox shows about alerts on this phone: the install guide (iOS Safari, not from the
// Home Screen), the explained button that asks for permission, or why notifications are off.
function pushCard() {
  const need = state.pushNeed;
  if (!need || !state.token) return null;
  if (need === 'ios_install') {
    return h('section', { class: 'card push-card', id: 'ios-install' },
      h('h2', {}, t('ios_title')),
      h('ol', { class: 'ios-steps' }, (t('ios_steps') || []).map((step) => h('li', {}, step))));
  }
  if (need === 'denied') {
    return h('section', { class: 'card push-card', id: 'push-denied', role: 'note' }, h('p', {}, t('push_denied')));
  }
  const button = h('button', { type: 'button', class: 'btn btn-primary btn-block', id: 'enable-push' }, t('push_enable'));
  button.addEventListener('click', () => {
    button.disabled = true;
    enablePush().finally(() => { button.disabled = false; });
  });
  return h('section', { class: 'card push-card', id: 'push-ask' },
    need === 'expired' ? h('p', { class: 'form-error', id: 'push-expired' }, t('push_expired_failed')) : null,
    h('p', { id: 'push-why' }, t('push_why')), button);
}

async function registration() {
  const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  await withTimeout(navigator.serviceWorker.ready, 15000, 'service worker');
  return reg;
}

// On start: register the worker; subscribe at once only when permission was given before (no
// prompt without a tap). Otherwise say what is needed.
async function setupPush() {
  if (!('serviceWorker' in navigator)) { setPushNote('push_unavailable'); report('unsupported', 'unsupported'); return; }
  let reg;
  try {
    reg = await registration();
    helloWorker();
  } catch (err) {
    console.warn('service worker unavailable', err);
    setPushNote('push_unavailable');
    report(permissionState(), 'error');
    return;
  }
  const permission = permissionState();
  if (permission === 'unsupported' || !('PushManager' in window) || !reg.pushManager) {
    state.pushNeed = isIos() && !isStandalone() ? 'ios_install' : null;
    setPushNote('push_unavailable');
    report('unsupported', 'unsupported');
    refreshView();
    return;
  }
  if (isIos() && !isStandalone()) {
    state.pushNeed = 'ios_install';
    report(permission, 'none');
    refreshView();
    return;
  }
  if (permission === 'denied') {
    state.pushNeed = 'denied';
    setPushNote('push_denied');
    report('denied', 'none');
    refreshView();
    return;
  }
  if (permission === 'default') {
    state.pushNeed = 'ask';
    report('default', 'none');
    refreshView();
    return;
  }
  await subscribe(reg);
}

// The button: the permission prompt comes from this tap (iOS requires it).
async function enablePush() {
  let permission = permissionState();
  try {
    if (permission === 'default') permission = await withTimeout(Notification.requestPermission(), 60000, 'permission');
  } catch (_) {
    permission = permissionState();
  }
  if (permission !== 'granted') {
    state.pushNeed = permission === 'denied' ? 'denied' : 'ask';
    setPushNote(permission === 'denied' ? 'push_denied' : 'push_unavailable');
    report(permission, 'none');
    refreshView();
    return;
  }
  try {
    await subscribe(await registration());
  } catch (err) {
    console.warn('push unavailable', err);
  }
}

// Subscribe (or keep the subscription) and register it; an expired or rotated subscription is
// replaced. The result is reported, so managers see whose phone cannot be paged.
async function subscribe(reg) {
  const hadDevice = await Store.kv.get('device_id');
  try {
    const { public_key: key } = await api('GET', '/v1/push/vapid-public-key');
    const serverKey = b64urlToBytes(key);
    let sub = await reg.pushManager.getSubscription();
    if (sub && sub.options && sub.options.applicationServerKey) {
      const current = new Uint8Array(sub.options.applicationServerKey);
      if (current.length !== serverKey.length || current.some((b, i) => b !== serverKey[i])) {
        await sub.unsubscribe(); // the server rotated its VAPID key
        sub = null;
      }
    }
    if (sub && sub.expirationTime && sub.expirationTime < Date.now()) {
      await sub.unsubscribe();
      sub = null;
    }
    const expired = !sub && Boolean(hadDevice); // we had one and the browser dropped it
    const make = () => withTimeout(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: serverKey }), 15000, 'push subscribe');
    if (!sub) sub = await make();
    const installId = await Store.installId();
    let device;
    try {
      device = await api('POST', '/v1/devices', { ...sub.toJSON(), install_id: installId });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 409) throw err;
      // The subscription is another staff member's (a shared browser): a new one for this login.
      await sub.unsubscribe();
      sub = await make();
      device = await api('POST', '/v1/devices', { ...sub.toJSON(), install_id: installId });
    }
    await Store.kv.set('device_id', device.id);
    state.pushNeed = null;
    setPushNote(expired ? 'push_expired' : 'push_ok');
    report('granted', 'subscribed', device.id);
    setTimeout(() => { if (['push_ok', 'push_expired'].includes(state.pushNote)) { state.pushNote = null; renderChrome(); } }, 6000);
  } catch (err) {
    console.warn('push unavailable', err);
    state.pushNeed = hadDevice ? 'expired' : null;
    setPushNote('push_unavailable');
    report(permissionState(), hadDevice ? 'expired' : 'error');
  }
  refreshView();
}

// Tell notify what this install can do (permission, push, version): the fleet's health.
async function report(permission, push, deviceId) {
  if (!state.token) return;
  try {
    const device = deviceId || (await Store.kv.get('device_id')) || null;
    await api('POST', '/v1/installs', {
      install_id: await Store.installId(),
      permission: ['granted', 'denied', 'default'].includes(permission) ? permission : 'unsupported',
      push,
      app_version: Store.APP_VERSION,
      standalone: isStandalone(),
      ...(device ? { device_id: device } : {}),
    });
    document.body.dataset.reported = `${permission}/${push}`;
  } catch (_) { /* offline: reported on the next start */ }
}

async function helloWorker() {
  try {
    const reg = await navigator.serviceWorker.getRegistration('/');
    const workers = new Set([reg && reg.active, navigator.serviceWorker.controller].filter(Boolean));
    for (const w of workers) w.postMessage({ type: 'hello' });
  } catch (_) { /* no worker yet */ }
}

function registerSync() {
  navigator.serviceWorker?.ready.then((reg) => reg.sync && reg.sync.register('voc-replay')).catch(() => {});
}

// ---------------------------------------------------------------- offline queue

async function loadPending() {
  const items = await Store.queue.all().catch(() => []);
  state.pending.clear();
  state.correcting.clear();
  for (const item of items) {
    if (item.kind === 'correct') {
      state.correcting.set(item.alert_id, { ...(state.correcting.get(item.alert_id) || {}), ...(item.body || {}) });
    } else {
      state.pending.set(item.alert_id, item.kind);
    }
  }
  document.body.dataset.pending = String(items.length);
}

function syncNote(lines) {
  const el = $('#sync-note');
  el.replaceChildren(...lines.map(([text, kind]) => h('p', { class: `msg-${kind}` }, text)));
  el.hidden = !lines.length;
  clearTimeout(syncNote.timer);
  if (lines.length) syncNote.timer = setTimeout(() => { el.hidden = true; }, 15000);
}

// Send what was done offline; say what became of each (applied, or someone else's meanwhile).
async function replayQueue() {
  if (!state.token || replayQueue.running) return;
  replayQueue.running = true;
  try {
    const results = await Store.replay();
    showReplayed(results);
  } catch (_) { /* offline still */ } finally {
    replayQueue.running = false;
  }
  await loadPending();
  refreshView();
}

function showReplayed(results) {
  if (!results || !results.length) return;
  for (const { item, outcome, alert } of results) {
    if (item.kind !== 'correct' || outcome !== 'done' || !alert) continue;
    const shown = state.detail && state.detail.id === item.alert_id ? state.detail : state.alerts.get(item.alert_id);
    if (shown) showCorrected(shown, alert);
  }
  const lines = results.map(({ item, outcome, problem }) => {
    const step = t(`step_${item.kind}`);
    if (outcome === 'done') return [t('synced'), 'ok'];
    if (outcome === 'conflict') return [t('sync_conflict', { who: who((problem || {}).acknowledged_by) || '—', step }), 'warn'];
    if (outcome === 'gone') return [t('sync_gone', { step }), 'warn'];
    return [t('sync_rejected', { detail: (problem && (problem.detail || problem.title)) || '' }), 'error'];
  });
  document.body.dataset.replayed = results.map((r) => `${r.item.alert_id}:${r.outcome}`).join(' ');
  syncNote(lines);
}

function refreshView() {
  if (!state.token) return;
  const r = currentRoute();
  if (r.view === 'inbox') renderInbox();
  else if (r.view === 'detail' && state.detail && state.detail.id === r.id) openDetail(r.id);
  else if (r.view === 'fleet') renderFleet();
}

function onWorkerMessage(event) {
  const data = event.data || {};
  if (data.type === 'session') {
    document.body.dataset.swSession = data.has_session ? 'ok' : 'none';
  } else if (data.type === 'push') {
    const p = data.payload || {};
    document.body.dataset.lastPush = p.alert_id || 'unknown';
    document.body.dataset.lastReceipt = String(data.receipt ?? 'none');
    if (p.title) toast(`${p.title}${p.body ? ` — ${p.body}` : ''}`, p.priority === 'urgent' ? 'urgent' : 'info');
    refreshInbox();
  } else if (data.type === 'action') {
    document.body.dataset.lastAction = `${data.alert_id}:${data.outcome}`;
    if (data.outcome === 'acknowledged') toast(t('from_notification'), 'info');
    refreshInbox();
  } else if (data.type === 'replayed') {
    showReplayed(data.results);
    loadPending().then(refreshView);
  } else if (data.type === 'resubscribed') {
    setPushNote(data.ok ? 'push_expired' : 'push_expired_failed');
    report(permissionState(), data.ok ? 'subscribed' : 'expired');
  } else if (data.type === 'navigate' && data.url) {
    const url = new URL(data.url, location.origin);
    if (url.origin === location.origin) location.hash = url.hash || '#/';
  }
}

// ---------------------------------------------------------------- routing

function currentRoute() {
  if (!state.token) return { view: 'login' };
  if (location.hash === '#/fleet') return { view: 'fleet' };
  const m = /^#\/alerts\/([^/?#]+)/.exec(location.hash);
  return m ? { view: 'detail', id: decodeURIComponent(m[1]) } : { view: 'inbox' };
}

let lastRoute = '';
function route() {
  const r = currentRoute();
  const key = `${r.view}:${r.id || ''}`;
  const changed = key !== lastRoute;
  // Not on the first drawing after the page loaded: a screen reader starts at its top anyway.
  if (changed && lastRoute) focusPending = true;
  lastRoute = key;
  if (r.view === 'login') { renderLogin(); return; }
  if (r.view === 'fleet') {
    renderFleet();
    if (changed) loadFleet().then(() => { if (currentRoute().view === 'fleet') renderFleet(); });
    return;
  }
  if (r.view === 'detail') {
    if (state.detail && state.detail.id === r.id) renderDetail(state.detail);
    openDetail(r.id, { receipt: changed });
    return;
  }
  state.detail = null;
  renderInbox();
  if (changed) refreshInbox();
}

// `signedIn`: from the sign-in form, which the inbox replaces (the focus moves on to it).
async function startSession({ signedIn = false } = {}) {
  document.body.dataset.session = 'ok';
  await loadPending();
  renderChrome();
  lastRoute = signedIn ? 'login:' : '';
  route(); // the inbox route loads the alerts
  if (currentRoute().view === 'detail') refreshInbox();
  openStream();
  setupPush(); // in the background; never blocks the app
  replayQueue();
  loadFleet().then(() => { if (currentRoute().view === 'inbox') renderInbox(); });
}

function tick() {
  for (const el of document.querySelectorAll('time.age[data-created]')) {
    el.textContent = ago(Number(el.dataset.created));
  }
}

async function boot() {
  document.documentElement.lang = state.lang;
  $('#lang').addEventListener('click', () => setLang(state.lang === 'ko' ? 'en' : 'ko'));
  $('#logout').addEventListener('click', () => logout());
  $('#push-note-close').addEventListener('click', () => { state.pushNoteDismissed = true; renderChrome(); });
  window.addEventListener('hashchange', route);
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.addEventListener('message', onWorkerMessage);
    navigator.serviceWorker.addEventListener('controllerchange', helloWorker);
    navigator.serviceWorker.startMessages();
  }
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.token) {
      tick();
      replayQueue();
    }
  });
  setInterval(tick, 20000);
  setInterval(() => { if (state.token && (state.pending.size || state.correcting.size)) replayQueue(); }, 10000);
  window.addEventListener('online', () => {
    if (!state.token) return;
    replayQueue().catch(() => {}).then(refreshInbox); // the inbox reloads even if the replay failed
    if (!state.stream || state.stream.readyState === EventSource.CLOSED) openStream();
  });
  renderChrome();
  let session = null;
  try {
    session = await Store.kv.get('session');
  } catch (_) { /* private mode without IndexedDB: sign in each time */ }
  if (session) {
    state.token = session.access_token;
    state.staff = session.staff;
    Store.kv.set('lang', state.lang).catch(() => {});
    startSession();
  } else {
    lastRoute = 'login:'; // a switch of language redraws it, and leaves the focus on the switch
    renderLogin();
  }
  document.body.dataset.ready = '1';
}

boot();
