/* Frontline VoC — what the staff app keeps on the phone, shared by the page and the service
 * worker (a classic script: the page loads it with <script>, the worker with importScripts).
 *
 * IndexedDB "voc-app": `kv` (the session, the install id, the language, the push device id),
 * `alerts` (the offline inbox: each alert's summary and, once opened, its detail as the server
 * serves it: the customer's text as written, their context masked) and `queue` (acknowledgements and resolves made offline,
 * replayed in order when the connection returns).
 *
 * The session lives here, not in the page's memory: the worker acknowledges from a notification
 * and reports "shown" after a browser restart with it. Access tokens are refreshed under a Web
 * Lock, so the page and the worker never spend the same refresh token twice (which the server
 * treats as theft and ends the session). */

(function (global) {
  'use strict';

  const APP_VERSION = '2026.12.2'; // names the service worker's cache: a new shell, a new version
  const DB_NAME = 'voc-app';
  const INBOX_KEEP = 100;
  let opening = null;

  function open() {
    if (!opening) {
      opening = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB_NAME, 1);
        req.onupgradeneeded = () => {
          const db = req.result;
          db.createObjectStore('kv');
          db.createObjectStore('alerts', { keyPath: 'id' });
          db.createObjectStore('queue', { keyPath: 'seq', autoIncrement: true });
        };
        req.onsuccess = () => {
          const db = req.result;
          db.onversionchange = () => { db.close(); opening = null; };
          resolve(db);
        };
        req.onerror = () => { opening = null; reject(req.error); };
      });
    }
    return opening;
  }

  // One transaction on one store; `fn` may return an IDBRequest, whose result is the answer.
  function run(store, mode, fn) {
    return open().then((db) => new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const out = fn(t.objectStore(store));
      t.oncomplete = () => resolve(out && typeof out === 'object' && 'readyState' in out ? out.result : out);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    }));
  }

  const kv = {
    get: (key) => run('kv', 'readonly', (s) => s.get(key)),
    set: (key, value) => run('kv', 'readwrite', (s) => { s.put(value, key); }),
    del: (key) => run('kv', 'readwrite', (s) => { s.delete(key); }),
  };

  const now = () => Date.now() / 1000;

  const alerts = {
    all: () => run('alerts', 'readonly', (s) => s.getAll()),
    get: (id) => run('alerts', 'readonly', (s) => s.get(id)),
    // Summaries (inbox rows, live events, pushes) merged into what is kept; the newest
    // INBOX_KEEP alerts stay.
    async putSummaries(list) {
      const kept = new Map((await alerts.all()).map((r) => [r.id, r]));
      for (const summary of list) {
        if (!summary || !summary.id) continue;
        const old = kept.get(summary.id) || { id: summary.id };
        kept.set(summary.id, { ...old, summary: { ...(old.summary || {}), ...summary }, saved_at: now() });
      }
      const ordered = [...kept.values()].sort((a, b) => ((b.summary || {}).created_at || 0) - ((a.summary || {}).created_at || 0));
      await run('alerts', 'readwrite', (s) => {
        for (const r of ordered.slice(0, INBOX_KEEP)) s.put(r);
        for (const r of ordered.slice(INBOX_KEEP)) s.delete(r.id);
      });
    },
    async putDetail(detail) {
      const old = (await alerts.get(detail.id)) || { id: detail.id };
      const summary = { ...(old.summary || {}) };
      for (const key of Object.keys(detail)) {
        if (!['feedback', 'customer', 'plan', 'related_feedback'].includes(key)) summary[key] = detail[key];
      }
      await run('alerts', 'readwrite', (s) => { s.put({ ...old, summary, detail, saved_at: now() }); });
    },
    clear: () => run('alerts', 'readwrite', (s) => { s.clear(); }),
  };

  const queue = {
    all: () => run('queue', 'readonly', (s) => s.getAll()),
    add: (item) => run('queue', 'readwrite', (s) => s.add({ ...item, queued_at: now() })),
    remove: (seq) => run('queue', 'readwrite', (s) => { s.delete(seq); }),
    clear: () => run('queue', 'readwrite', (s) => { s.clear(); }),
  };

  function withLock(name, fn) {
    if (global.navigator && global.navigator.locks && global.navigator.locks.request) {
      return global.navigator.locks.request(name, fn);
    }
    return fn();
  }

  // The session as the server answered login or refresh, with absolute expiry times.
  function sessionFrom(body, installId) {
    return {
      access_token: body.access_token,
      access_expires_at: now() + Number(body.expires_in || 0),
      refresh_token: body.refresh_token,
      refresh_expires_at: now() + Number(body.refresh_expires_in || 0),
      staff: body.staff || {},
      install_id: installId,
    };
  }

  async function installId() {
    let id = await kv.get('install_id');
    if (!id) {
      const bytes = new Uint8Array(16);
      global.crypto.getRandomValues(bytes);
      id = `inst_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
      await kv.set('install_id', id);
    }
    return id;
  }

  // A usable access token: the stored one while it has more than 30 s left, else a refreshed
  // one. `stale` is a token the server just refused (401): refresh unless someone already did.
  // null when signed out (no session, or the refresh was refused: the session is dropped).
  // A network failure throws (the caller is offline).
  async function accessToken(stale = null) {
    const fresh = (s) => s && s.access_token && s.access_token !== stale && s.access_expires_at - 30 > now();
    const first = await kv.get('session');
    if (!first) return null;
    if (fresh(first)) return first.access_token;
    return withLock('voc-session', async () => {
      const current = await kv.get('session');
      if (!current) return null;
      if (fresh(current)) return current.access_token; // refreshed by the page or the worker
      const response = await fetch('/v1/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refresh_token: current.refresh_token, install_id: current.install_id }),
        cache: 'no-store',
      });
      if (response.status === 401 || response.status === 422) {
        await kv.del('session');
        return null;
      }
      if (!response.ok) throw new Error(`refresh answered ${response.status}`);
      const next = sessionFrom(await response.json(), current.install_id);
      await kv.set('session', next);
      return next.access_token;
    });
  }

  const SIGNED_OUT = { status: 401, ok: false, signedOut: true, headers: new Headers(), json: async () => ({}), text: async () => '' };

  // fetch() with the session's access token, refreshed when it expired or the server refused it
  // once. Throws on a network error, like fetch.
  async function authFetch(method, path, body) {
    const send = (token) => fetch(path, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: 'application/json, application/problem+json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    let token = await accessToken();
    if (!token) return SIGNED_OUT;
    let response = await send(token);
    if (response.status === 401) {
      token = await accessToken(token);
      if (!token) return SIGNED_OUT;
      response = await send(token);
    }
    return response;
  }

  async function endSession() {
    const current = await kv.get('session');
    await kv.del('session');
    await kv.del('device_id');
    await alerts.clear();
    await queue.clear();
    if (current && current.refresh_token) {
      try {
        await fetch('/v1/auth/logout', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: current.refresh_token }),
        });
      } catch (_) { /* offline: the token runs out on its own */ }
    }
  }

  // What the app queues offline: the step's path under /v1/alerts/{id}/ (an acknowledgement, a
  // resolve with its outcome, a correction of the labels), each idempotent on the server.
  const STEPS = { ack: 'ack', resolve: 'resolve', correct: 'corrections' };

  // Send what was queued offline (acknowledgements, resolves, corrections), oldest first. Each item ends as `done` (the server took it, or
  // it was this staff member's already: 200 with the original time), `conflict` (someone else
  // acknowledged or resolved it meanwhile: 409, nothing changed), `gone` (the alert is no longer
  // this staff member's to see: 404) or `rejected`; a network error stops the replay and keeps
  // the rest. Answers [{item, outcome, problem, alert}].
  function replay() {
    return withLock('voc-replay', async () => {
      const results = [];
      for (const item of await queue.all()) {
        const step = STEPS[item.kind];
        if (!step) { await queue.remove(item.seq); continue; }
        let response;
        try {
          const path = `/v1/alerts/${encodeURIComponent(item.alert_id)}/${step}`;
          response = step === 'ack'
            ? await authFetch('POST', `${path}?via=${item.via === 'notification' ? 'notification' : 'offline_replay'}`)
            : await authFetch('POST', path, item.body || {});
        } catch (_) {
          break; // still offline
        }
        if (response.signedOut) break; // kept for the next sign-in of this install
        let data = null;
        try { data = await response.json(); } catch (_) { data = null; }
        const outcome = response.ok ? 'done'
          : response.status === 409 ? 'conflict'
            : response.status === 404 ? 'gone' : 'rejected';
        if (response.ok && data && step !== 'corrections') await alerts.putSummaries([data]);
        await queue.remove(item.seq);
        results.push({ item, outcome, problem: response.ok ? null : data, alert: response.ok ? data : null });
      }
      return results;
    });
  }

  global.VocStore = {
    APP_VERSION, kv, alerts, queue, sessionFrom, installId, accessToken, authFetch, endSession, replay,
  };
})(self);
