/* Frontline VoC service worker: Web Push -> notification (Acknowledge / Open) + "shown" receipt,
 * acknowledging from the notification, re-subscribing when the push service rotates the
 * subscription, replaying offline actions, and the app shell for an offline start.
 *
 * Credentials come from IndexedDB (store.js), not from the page: after a browser restart the
 * worker still reports receipts and acts on notification buttons, refreshing an expired access
 * token itself. API calls are never cached. */

importScripts('/static/store.js');

const { kv, alerts, queue, authFetch, APP_VERSION } = self.VocStore;
const CACHE = `voc-shell-${APP_VERSION}`;
const SHELL = [
  '/', '/static/store.js', '/static/app.js', '/static/i18n/ko.json', '/static/i18n/en.json',
  '/static/app.css', '/static/icon.svg', '/static/icon-192.png', '/static/badge-96.png', '/manifest.webmanifest',
];

const TEXT = {
  ko: {
    ack: '확인했습니다',
    open: '열기',
    acked: '확인 처리했습니다',
    already_resolved: '이미 해결된 알림입니다',
    already_acked: '이미 다른 직원이 확인했습니다',
    gone: '더 이상 나에게 배정된 알림이 아닙니다',
    queued: '오프라인 — 연결되면 확인을 보냅니다',
    signed_out: '다시 로그인해야 확인할 수 있습니다',
    failed: '확인하지 못했습니다 — 앱에서 다시 시도하세요',
  },
  en: {
    ack: 'Acknowledge',
    open: 'Open',
    acked: 'Acknowledged',
    already_resolved: 'Already resolved',
    already_acked: 'Already acknowledged by someone else',
    gone: 'No longer assigned to you',
    queued: 'Offline — the acknowledgement is sent when back online',
    signed_out: 'Sign in again to acknowledge',
    failed: 'Could not acknowledge — try again in the app',
  },
};

async function text() {
  const lang = await kv.get('lang').catch(() => null);
  return TEXT[lang] || TEXT.ko;
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n)));
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const isShell = SHELL.includes(url.pathname);
  if (!isShell && request.mode !== 'navigate') return; // API and everything else: network only
  // Network first (fresh code when online), the cached shell when offline.
  event.respondWith(
    (async () => {
      try {
        const response = await fetch(request);
        if (response.ok && isShell) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      } catch (err) {
        const cached = await caches.match(isShell ? request : '/', { ignoreSearch: true });
        if (cached) return cached;
        throw err;
      }
    })(),
  );
});

async function tellClients(message) {
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const client of windows) client.postMessage(message);
}

self.addEventListener('message', (event) => {
  const data = event.data || {};
  if (data.type === 'hello' && event.source && event.source.postMessage) {
    event.waitUntil(
      kv.get('session').then((s) => event.source.postMessage({ type: 'session', has_session: Boolean(s) })),
    );
  }
});

function parsePayload(data) {
  if (!data) return {};
  try {
    const value = data.json();
    return value && typeof value === 'object' ? value : {};
  } catch (_) {
    return { title: 'Frontline VoC', body: data.text() };
  }
}

async function receipt(alertId, kind) {
  if (!alertId) return null;
  try {
    const deviceId = await kv.get('device_id');
    const response = await authFetch('POST', `/v1/alerts/${encodeURIComponent(alertId)}/receipts`,
      deviceId ? { kind, device_id: deviceId } : { kind });
    return response.status;
  } catch (_) {
    return 0; // offline: the push itself arrived, so the network is flaky; nothing to retry
  }
}

async function handlePush(payload) {
  const t = await text();
  const title = payload.title || 'Frontline VoC';
  const open = !payload.status || payload.status === 'open';
  const options = {
    body: payload.body || '',
    data: payload,
    icon: '/static/icon-192.png',
    badge: '/static/badge-96.png',
    // An urgent page stays on the screen until someone acts on it.
    requireInteraction: payload.priority === 'urgent',
    timestamp: Date.now(),
    actions: open && payload.alert_id ? [{ action: 'ack', title: t.ack }, { action: 'open', title: t.open }] : [],
  };
  if (payload.alert_id) {
    options.tag = String(payload.alert_id); // an update replaces the stale notification…
    options.renotify = true; // …and rings again
  }
  let shown = false;
  try {
    await self.registration.showNotification(title, options);
    shown = true;
  } catch (err) {
    console.warn('showNotification failed', err);
  }
  const signedIn = Boolean(await kv.get('session').catch(() => null));
  if (payload.alert_id && signedIn) {
    const summary = { id: payload.alert_id, feedback_id: payload.feedback_id, title, body: payload.body || '',
      priority: payload.priority, status: payload.status || 'open' };
    const kept = await alerts.get(payload.alert_id).catch(() => null);
    if (!kept) summary.created_at = Date.now() / 1000;
    await alerts.putSummaries([summary]).catch(() => {});
  }
  const status = shown ? await receipt(payload.alert_id, 'shown') : null;
  await tellClients({ type: 'push', payload, shown, receipt: status });
  return status;
}

self.addEventListener('push', (event) => {
  event.waitUntil(handlePush(parsePayload(event.data)));
});

// The notification's Acknowledge button: acknowledge with the stored session, then replace the
// notification with the result. An alert someone else took, or that is resolved, or no longer
// this staff member's: said so, no error. Offline: queued and sent when back online.
async function acknowledgeFrom(payload) {
  const t = await text();
  const id = payload.alert_id;
  let outcome;
  let line;
  try {
    const deviceId = await kv.get('device_id');
    const query = `via=notification${deviceId ? `&device_id=${encodeURIComponent(deviceId)}` : ''}`;
    const response = await authFetch('POST', `/v1/alerts/${encodeURIComponent(id)}/ack?${query}`);
    let data = {};
    try { data = await response.json(); } catch (_) { data = {}; }
    if (response.ok) {
      outcome = 'acknowledged';
      line = t.acked;
      await alerts.putSummaries([data]).catch(() => {});
    } else if (response.status === 409) {
      outcome = /resolved/.test(String(data.detail || '')) ? 'already_resolved' : 'already_acknowledged';
      line = outcome === 'already_resolved' ? t.already_resolved : t.already_acked;
    } else if (response.status === 404) {
      outcome = 'gone';
      line = t.gone;
    } else if (response.signedOut || response.status === 401) {
      outcome = 'signed_out';
      line = t.signed_out;
    } else {
      outcome = 'failed';
      line = t.failed;
    }
  } catch (_) {
    await queue.add({ kind: 'ack', alert_id: id, via: 'notification' });
    if (self.registration.sync) self.registration.sync.register('voc-replay').catch(() => {});
    outcome = 'queued';
    line = t.queued;
  }
  await self.registration.showNotification(line, {
    body: payload.title || '',
    tag: id,
    data: { ...payload, outcome },
    icon: '/static/icon-192.png',
    badge: '/static/badge-96.png',
    renotify: false,
    silent: true,
    requireInteraction: false,
  });
  await tellClients({ type: 'action', alert_id: id, outcome });
  return outcome;
}

function sameOriginUrl(raw) {
  try {
    const url = new URL(raw || '/', self.location.origin);
    if (url.origin === self.location.origin) return url.href;
    return new URL(url.pathname + url.search + url.hash, self.location.origin).href;
  } catch (_) {
    return new URL('/', self.location.origin).href;
  }
}

async function openApp(payload) {
  const target = sameOriginUrl(payload.url || (payload.alert_id ? `/#/alerts/${payload.alert_id}` : '/'));
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const client of windows) {
    if (new URL(client.url).origin !== self.location.origin) continue;
    try {
      await client.focus();
    } catch (_) {
      /* focus needs a user gesture; the click is one */
    }
    if (new URL(client.url).pathname === '/') {
      client.postMessage({ type: 'navigate', url: target }); // the app routes by hash, no reload
      return;
    }
    try {
      await client.navigate(target);
      return;
    } catch (_) {
      continue;
    }
  }
  await self.clients.openWindow(target);
}

async function onNotificationClick(notification, action) {
  const payload = notification.data || {};
  notification.close();
  if (action === 'ack' && payload.alert_id) return acknowledgeFrom(payload);
  return openApp(payload);
}

self.addEventListener('notificationclick', (event) => {
  const work = onNotificationClick(event.notification, event.action);
  try {
    event.waitUntil(work);
  } catch (_) {
    /* an event dispatched by script (tests, tools) cannot extend its lifetime */
  }
});

// The push service rotated or expired the subscription: subscribe again with the same VAPID key
// and register the new endpoint under the stored session.
async function resubscribe(event) {
  let subscription = event.newSubscription || null;
  if (!subscription) {
    let key = event.oldSubscription && event.oldSubscription.options && event.oldSubscription.options.applicationServerKey;
    if (!key) {
      const { public_key: b64 } = await (await fetch('/v1/push/vapid-public-key')).json();
      const pad = '='.repeat((4 - (b64.length % 4)) % 4);
      key = Uint8Array.from(atob((b64 + pad).replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    }
    subscription = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  }
  const installId = await kv.get('install_id');
  const response = await authFetch('POST', '/v1/devices', { ...subscription.toJSON(), install_id: installId });
  if (response.ok) {
    const { id } = await response.json();
    await kv.set('device_id', id);
  }
  await kv.set('push_state', response.ok ? 'renewed' : 'expired');
  await tellClients({ type: 'resubscribed', ok: response.ok });
}

self.addEventListener('pushsubscriptionchange', (event) => {
  const work = resubscribe(event).catch(async (err) => {
    await kv.set('push_state', 'expired');
    await tellClients({ type: 'resubscribed', ok: false });
    throw err;
  });
  try {
    event.waitUntil(work);
  } catch (_) {
    work.catch(() => {}); // an event dispatched by script (tests, tools) cannot extend its lifetime
  }
});

// Background Sync (Chromium): acknowledgements, resolves and corrections queued offline go out
// when the connection returns, even with the app closed. What is still queued (the network failed
// again) fails the sync event, so the browser tries again later.
async function replayQueued() {
  const results = await self.VocStore.replay();
  await tellClients({ type: 'replayed', results });
  if ((await queue.all()).length) throw new Error('still offline: the browser retries the sync');
}

self.addEventListener('sync', (event) => {
  if (event.tag === 'voc-replay') event.waitUntil(replayQueued());
});
