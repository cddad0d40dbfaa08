/* Frontline VoC service worker: Web Push -> notification + receipt, app shell for offline start.
 *
 * The staff token lives only in this worker's memory (the page sends it with
 * postMessage({type: 'token', token})). API calls are never cached. */

const CACHE = 'voc-shell-v1';
const SHELL = ['/', '/static/app.js', '/static/app.css', '/static/icon.svg', '/manifest.webmanifest'];

let token = null;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
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

self.addEventListener('message', (event) => {
  const data = event.data || {};
  if (data.type === 'token') {
    token = typeof data.token === 'string' && data.token ? data.token : null;
    if (event.source && event.source.postMessage) {
      event.source.postMessage({ type: 'token-ok', has_token: token !== null });
    }
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

async function reportShown(alertId) {
  if (!token || !alertId) return null;
  try {
    const response = await fetch(`/v1/alerts/${encodeURIComponent(alertId)}/receipts`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'shown' }),
      cache: 'no-store',
    });
    if (response.status === 401) token = null; // expired: wait for the page to send a fresh one
    return response.status;
  } catch (_) {
    return 0;
  }
}

async function handlePush(payload) {
  const title = payload.title || 'Frontline VoC';
  const options = {
    body: payload.body || '',
    data: payload,
    icon: '/static/icon.svg',
    badge: '/static/icon.svg',
    requireInteraction: payload.priority === 'urgent',
  };
  if (payload.alert_id) {
    options.tag = String(payload.alert_id);
    options.renotify = true; // only allowed together with a tag
  }
  let shown = false;
  try {
    await self.registration.showNotification(title, options);
    shown = true;
  } catch (err) {
    console.warn('showNotification failed', err);
  }
  const receipt = shown ? await reportShown(payload.alert_id) : null;
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const client of windows) {
    client.postMessage({ type: 'push', payload, shown, receipt });
  }
}

self.addEventListener('push', (event) => {
  event.waitUntil(handlePush(parsePayload(event.data)));
});

function sameOriginUrl(raw) {
  try {
    const url = new URL(raw || '/', self.location.origin);
    if (url.origin === self.location.origin) return url.href;
    return new URL(url.pathname + url.search + url.hash, self.location.origin).href;
  } catch (_) {
    return new URL('/', self.location.origin).href;
  }
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const payload = event.notification.data || {};
  const target = sameOriginUrl(payload.url || (payload.alert_id ? `/#/alerts/${payload.alert_id}` : '/'));
  event.waitUntil(
    (async () => {
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
        } else {
          try {
            await client.navigate(target);
          } catch (_) {
            continue;
          }
        }
        return;
      }
      await self.clients.openWindow(target);
    })(),
  );
});
