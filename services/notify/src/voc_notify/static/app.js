// Frontline VoC — staff app. Plain ES module, no build step, no dependencies.
// Routes: #/ (inbox), #/alerts/{id} (detail), #/fleet (managers: their staff's phones).
// The session (access and refresh tokens), the offline inbox and the queue of actions made
// offline live in IndexedDB (store.js), shared with the service worker.

const Store = window.VocStore;

const I18N = {
  ko: {
    app: 'Frontline VoC',
    login_title: '직원 로그인',
    login_hint: '매장 알림과 대응 계획을 받으려면 로그인하세요.',
    email: '이메일',
    password: '비밀번호',
    login: '로그인',
    logging_in: '로그인 중…',
    logout: '로그아웃',
    locked: '로그인 시도가 너무 많습니다. {s}초 후에 다시 시도하세요.',
    network_error: '서버에 연결할 수 없습니다.',
    session_ended: '세션이 끝났습니다(로그아웃, 비밀번호 변경 또는 계정 비활성화). 다시 로그인하세요.',
    offline: '오프라인입니다 — 연결되면 알림을 다시 불러옵니다.',
    inbox: '받은 알림',
    inbox_empty: '아직 알림이 없습니다. 새 피드백이 오면 여기에 바로 표시됩니다.',
    live_on: '실시간',
    live_off: '재연결 중',
    back: '받은 알림',
    just_now: '방금',
    min_ago: '{n}분 전',
    hour_ago: '{n}시간 전',
    day_ago: '{n}일 전',
    status_open: '새 알림',
    status_acknowledged: '확인함',
    status_resolved: '해결됨',
    prio_urgent: '긴급',
    prio_normal: '알림',
    prio_info: '공유',
    feedback: '고객의 목소리',
    no_text: '(텍스트 없음 — 평점만)',
    channel: '채널',
    category: '분류',
    severity: '심각도',
    sentiment: '감정',
    uncertain: '분류 불확실 — 원문 확인',
    uncertain_hint: '분류 신뢰도가 낮습니다. 분류만 믿지 말고 고객의 원문을 읽어 주세요.',
    confidence: '감정 신뢰도',
    category_confidence: '분류 신뢰도',
    correct_title: '분류 바로잡기',
    correct_hint: '분류가 틀렸다면 한 번 눌러 고쳐 주세요. 모델 학습에 쓰입니다.',
    correct_category: '분류 선택',
    corrected_by: '{who}님이 {at}에 수정 (이전: {before})',
    corrected_ok: '분류를 수정했습니다.',
    queued_correct: '오프라인입니다 — 연결되면 분류 수정을 보냅니다.',
    correct_failed: '수정하지 못했습니다: {detail}',
    customer: '고객 정보',
    anonymous: '비회원 고객 — 고객 정보 없음',
    tier: '등급',
    phone: '전화',
    feedback_count: '피드백 수',
    mean_csat: '평균 CSAT',
    last_visits: '최근 방문',
    no_visits: '방문 기록 없음',
    story: '최근 접촉 (모든 채널·매장)',
    no_story: '이전 접촉 없음 — 첫 접촉입니다',
    contact_received: '접수',
    contact_alerted: '알림 중',
    contact_acknowledged: '확인됨',
    contact_resolved: '해결됨',
    household: '가구',
    household_of: '{relation} · {members}',
    relations: { owner: '계정 소유자', driver: '운전자', family_member: '가족' },
    sig_vip: 'VIP',
    sig_repeat: '반복 불만 {n}회',
    sig_repeat_plain: '반복 불만',
    sig_swing: '만족도 급변 ({d})',
    sig_churn: '이탈 위험',
    sig_chronic: '잦은 불만',
    sig_low: '낮은 만족도',
    plan: '대응 계획',
    steps: '단계',
    kind_pattern: '패턴',
    kind_heads_up: '방문 알림',
    pattern_items: '같은 불만 ({n}명)',
    arrival: '방문 고객',
    step_save_failed: '체크 저장 실패: {detail}',
    checklist_log: '체크 기록',
    script: '응대 스크립트',
    compensation: '보상 한도',
    compensation_by: '{role} 승인',
    no_compensation: '보상 없음',
    sla: 'SLA',
    sla_ack: '확인 {t}',
    sla_resolve: '해결 {t}',
    why: '이 계획이 선택된 이유',
    degraded: '일부 정보 없이 만든 알림입니다',
    degraded_profile_unavailable: '고객 정보 서비스에 연결할 수 없어 고객 정보 없이 계획을 골랐습니다.',
    degraded_actions_unavailable: '대응 계획 서비스에 연결할 수 없어 기본 계획을 보여줍니다.',
    acknowledge: '확인했습니다',
    acknowledged_msg: '확인 처리했습니다.',
    already: '이미 처리된 알림입니다: {detail}',
    outcome: '결과',
    choose_outcome: '결과를 선택하세요',
    out_resolved: '현장에서 해결',
    out_compensated: '보상 제공',
    out_referred: '상급자/부서에 전달',
    out_no_action_needed: '조치 불필요',
    out_customer_unreachable: '고객 연락 안 됨',
    note: '메모',
    note_ph: '무엇을 했는지 간단히 적어 주세요',
    resolve: '해결 완료',
    resolve_title: '마무리',
    you: '나',
    resolved_msg: '해결 처리했습니다.',
    resolved_info: '결과: {outcome}',
    acked_by: '확인: {who} · {when}',
    resolved_by: '해결: {who} · {when}',
    load_failed: '알림을 불러오지 못했습니다: {detail}',
    push_unavailable: '푸시 알림 사용 불가 — 앱을 열어 두면 실시간으로 받습니다.',
    push_ok: '푸시 알림이 켜졌습니다.',
    push_why: '휴대폰이 잠겨 있어도 긴급 알림을 받으려면 알림을 켜 주세요. 잠금 화면에서 바로 확인할 수 있습니다.',
    push_enable: '알림 켜기',
    push_denied: '알림이 차단되어 있습니다. 브라우저(또는 휴대폰) 설정 › 알림에서 이 사이트를 허용하면 잠금 화면으로 알림을 받습니다.',
    push_expired: '알림 구독이 만료되어 다시 등록했습니다.',
    push_expired_failed: '알림 구독이 만료되었습니다. "알림 켜기"를 눌러 다시 등록하세요.',
    ios_title: '홈 화면에 추가해야 알림을 받을 수 있습니다',
    ios_steps: ['Safari 아래쪽의 공유 버튼(□↑)을 누르세요.', '"홈 화면에 추가"를 고르고 "추가"를 누르세요.', '홈 화면의 VoC 아이콘으로 앱을 열고 로그인한 뒤 "알림 켜기"를 누르세요.'],
    pending_sync: '동기화 대기',
    queued_ack: '오프라인입니다 — 연결되면 확인을 보냅니다.',
    queued_resolve: '오프라인입니다 — 연결되면 해결을 보냅니다.',
    synced: '오프라인에서 한 처리를 보냈습니다.',
    sync_conflict: '{who}님이 먼저 처리한 알림입니다 — 내 {step}은(는) 반영되지 않았습니다.',
    sync_gone: '이 알림은 더 이상 나에게 배정되어 있지 않습니다 — 내 {step}은(는) 반영되지 않았습니다.',
    sync_rejected: '보내지 못했습니다: {detail}',
    step_ack: '확인',
    step_resolve: '해결',
    step_correct: '분류 수정',
    offline_copy: '오프라인 — 저장된 알림을 보여줍니다.',
    from_notification: '알림에서 확인했습니다.',
    fleet_summary: '직원 {total}명 중 {n}명이 알림을 받을 수 없습니다',
    fleet_all_ok: '직원 {total}명 모두 알림을 받을 수 있습니다',
    fleet_title: '직원 휴대폰 상태',
    fleet_problems: {
      no_device: '등록된 휴대폰 없음', permission_denied: '알림 차단됨', subscription_expired: '구독 만료',
      suspect_device: '알림이 표시되지 않음', silent_device: '하루 넘게 알림 미표시',
    },
    fleet_last_shown: '마지막 표시: {when}',
    fleet_never: '표시 기록 없음',
    fleet_version: '앱 {v}',
    new_alert: '새 알림',
    minutes: '{n}분',
    hours: '{n}시간',
    seconds: '{n}초',
    roles: { staff: '직원', shift_lead: '시프트 리더', store_manager: '점장', area_manager: '지역 매니저', cx_admin: 'CX 관리자' },
    sentiments: { positive: '긍정', neutral: '중립', negative: '부정' },
    severities: { low: '낮음', medium: '보통', high: '높음', critical: '심각' },
    channels: {
      kiosk: '키오스크', app: '앱', web: '웹', survey: '설문', sms: '문자', email: '이메일',
      call_center: '콜센터', chatbot: '챗봇', social: '소셜',
    },
    categories: {
      wait_time: '대기 시간', staff_attitude: '직원 태도', food_quality: '음식 품질', food_safety: '식품 안전',
      cleanliness: '청결', price_value: '가격 대비 가치', product_defect: '제품 불량', delivery: '배달·배송',
      billing_payment: '결제·청구', app_digital: '앱·디지털', facility: '시설', praise: '칭찬', other: '기타',
    },
  },
  en: {
    app: 'Frontline VoC',
    login_title: 'Staff sign-in',
    login_hint: 'Sign in to receive your store’s alerts and response plans.',
    email: 'E-mail',
    password: 'Password',
    login: 'Sign in',
    logging_in: 'Signing in…',
    logout: 'Sign out',
    locked: 'Too many attempts. Try again in {s} s.',
    network_error: 'Cannot reach the server.',
    session_ended: 'Your session ended (signed out elsewhere, password changed or account deactivated). Sign in again.',
    offline: 'You are offline — alerts reload when the connection is back.',
    inbox: 'Inbox',
    inbox_empty: 'No alerts yet. New feedback shows up here the moment it arrives.',
    live_on: 'Live',
    live_off: 'Reconnecting',
    back: 'Inbox',
    just_now: 'just now',
    min_ago: '{n} min ago',
    hour_ago: '{n} h ago',
    day_ago: '{n} d ago',
    status_open: 'New',
    status_acknowledged: 'Acknowledged',
    status_resolved: 'Resolved',
    prio_urgent: 'Urgent',
    prio_normal: 'Normal',
    prio_info: 'FYI',
    feedback: 'What the customer said',
    no_text: '(no text — ratings only)',
    channel: 'Channel',
    category: 'Category',
    severity: 'Severity',
    sentiment: 'Sentiment',
    uncertain: 'Uncertain — check the text',
    uncertain_hint: 'The classifier is not sure: read what the customer wrote, not just the category.',
    correct_title: 'Correct the labels',
    correct_hint: 'Wrong label? One tap corrects it; the model learns from it.',
    correct_category: 'Choose a category',
    corrected_by: 'Corrected by {who} at {at} (was: {before})',
    corrected_ok: 'Labels corrected.',
    queued_correct: 'Offline — the correction is sent when the connection is back.',
    correct_failed: 'Could not correct: {detail}',
    confidence: 'Sentiment confidence',
    category_confidence: 'Category confidence',
    customer: 'Customer',
    anonymous: 'Anonymous customer — no profile',
    tier: 'Tier',
    phone: 'Phone',
    feedback_count: 'Feedback',
    mean_csat: 'Mean CSAT',
    last_visits: 'Last visits',
    no_visits: 'No visits on file',
    story: 'Recent contacts (every channel and store)',
    no_story: 'No earlier contact: this is the first',
    contact_received: 'received',
    contact_alerted: 'alerted',
    contact_acknowledged: 'acknowledged',
    contact_resolved: 'resolved',
    household: 'Household',
    household_of: '{relation} · {members}',
    relations: { owner: 'account owner', driver: 'driver', family_member: 'family member' },
    sig_vip: 'VIP',
    sig_repeat: 'Repeat issue ×{n}',
    sig_repeat_plain: 'Repeat issue',
    sig_swing: 'Score swing ({d})',
    sig_churn: 'Churn risk',
    sig_chronic: 'Frequent complainer',
    sig_low: 'Low satisfaction',
    plan: 'Response plan',
    steps: 'Steps',
    kind_pattern: 'Pattern',
    kind_heads_up: 'Heads-up',
    pattern_items: 'Same complaint ({n} customers)',
    arrival: 'Arriving customer',
    step_save_failed: 'Could not save the tick: {detail}',
    checklist_log: 'Checklist log',
    script: 'What to say',
    compensation: 'Compensation limit',
    compensation_by: 'approved by {role}',
    no_compensation: 'No compensation',
    sla: 'SLA',
    sla_ack: 'ack {t}',
    sla_resolve: 'resolve {t}',
    why: 'Why this plan',
    degraded: 'This alert was made with missing information',
    degraded_profile_unavailable: 'The customer profile service was unreachable: plan chosen without customer context.',
    degraded_actions_unavailable: 'The playbook service was unreachable: showing the built-in default plan.',
    acknowledge: 'Acknowledge',
    acknowledged_msg: 'Acknowledged.',
    already: 'Already handled: {detail}',
    outcome: 'Outcome',
    choose_outcome: 'Choose an outcome',
    out_resolved: 'Resolved on the spot',
    out_compensated: 'Compensated',
    out_referred: 'Referred',
    out_no_action_needed: 'No action needed',
    out_customer_unreachable: 'Customer unreachable',
    note: 'Note',
    note_ph: 'What did you do?',
    resolve: 'Resolve',
    resolve_title: 'Close the loop',
    you: 'you',
    resolved_msg: 'Resolved.',
    resolved_info: 'Outcome: {outcome}',
    acked_by: 'Acknowledged by {who} · {when}',
    resolved_by: 'Resolved by {who} · {when}',
    load_failed: 'Could not load the alert: {detail}',
    push_unavailable: 'Push unavailable — keep the app open for live alerts.',
    push_ok: 'Push notifications are on.',
    push_why: 'Turn on notifications to get urgent alerts on the lock screen, even with the phone locked, and acknowledge them from there.',
    push_enable: 'Turn on alerts',
    push_denied: 'Notifications are blocked. Allow this site under the browser’s (or phone’s) Settings › Notifications to get alerts on the lock screen.',
    push_expired: 'Your alert subscription had expired; it is renewed.',
    push_expired_failed: 'Your alert subscription expired. Tap “Turn on alerts” to renew it.',
    ios_title: 'Add the app to your Home Screen to get alerts',
    ios_steps: ['Tap the Share button (□↑) at the bottom of Safari.', 'Choose “Add to Home Screen”, then “Add”.', 'Open VoC from the Home Screen, sign in and tap “Turn on alerts”.'],
    pending_sync: 'Pending sync',
    queued_ack: 'Offline — the acknowledgement is sent when the connection is back.',
    queued_resolve: 'Offline — the resolve is sent when the connection is back.',
    synced: 'What you did offline has been sent.',
    sync_conflict: '{who} handled this alert first — your {step} was not applied.',
    sync_gone: 'This alert is no longer assigned to you — your {step} was not applied.',
    sync_rejected: 'Could not send: {detail}',
    step_ack: 'acknowledgement',
    step_resolve: 'resolve',
    step_correct: 'correction',
    offline_copy: 'Offline — showing the saved alerts.',
    from_notification: 'Acknowledged from the notification.',
    fleet_summary: '{n} of {total} staff can’t receive pages',
    fleet_all_ok: 'All {total} staff can receive pages',
    fleet_title: 'Staff phones',
    fleet_problems: {
      no_device: 'no phone registered', permission_denied: 'notifications blocked', subscription_expired: 'subscription expired',
      suspect_device: 'pushes not shown', silent_device: 'nothing shown for a day',
    },
    fleet_last_shown: 'last shown {when}',
    fleet_never: 'never shown',
    fleet_version: 'app {v}',
    new_alert: 'New alert',
    minutes: '{n} min',
    hours: '{n} h',
    seconds: '{n} s',
    roles: { staff: 'Staff', shift_lead: 'Shift lead', store_manager: 'Store manager', area_manager: 'Area manager', cx_admin: 'CX admin' },
    sentiments: { positive: 'positive', neutral: 'neutral', negative: 'negative' },
    severities: { low: 'low', medium: 'medium', high: 'high', critical: 'critical' },
    channels: {
      kiosk: 'Kiosk', app: 'App', web: 'Web', survey: 'Survey', sms: 'SMS', email: 'E-mail',
      call_center: 'Call center', chatbot: 'Chatbot', social: 'Social',
    },
    categories: {
      wait_time: 'Wait time', staff_attitude: 'Staff attitude', food_quality: 'Food quality', food_safety: 'Food safety',
      cleanliness: 'Cleanliness', price_value: 'Price and value', product_defect: 'Product defect', delivery: 'Delivery',
      billing_payment: 'Billing and payment', app_digital: 'App and digital', facility: 'Facility', praise: 'Praise', other: 'Other',
    },
  },
};

const OUTCOMES = ['resolved', 'compensated', 'referred', 'no_action_needed', 'customer_unreachable'];
const EVENT_TYPES = ['alert.created', 'alert.updated', 'alert.acknowledged', 'alert.resolved', 'alert.escalated', 'alert.checklist'];

const state = {
  token: null, // the access token while signed in (the session itself is in IndexedDB)
  staff: null,
  lang: localStorage.getItem('voc.lang') || (navigator.language || 'ko').slice(0, 2),
  alerts: new Map(), // id -> summary
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

function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleString(state.lang === 'ko' ? 'ko-KR' : 'en-GB', {
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
  state.pending.clear();
  state.correcting.clear();
  state.detail = null;
  state.fleet = null;
  closeStream();
  document.body.dataset.view = 'login';
  lastRoute = 'login:';
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
  route();
}

// ---------------------------------------------------------------- chrome (top bar)

function renderChrome() {
  const langBtn = $('#lang');
  langBtn.textContent = state.lang === 'ko' ? 'EN' : '한글';
  langBtn.setAttribute('aria-label', state.lang === 'ko' ? 'Switch to English' : '한국어로 보기');
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
  note.hidden = !state.token || !state.pushNote || state.pushNoteDismissed;
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
      await startSession();
    } catch (err) {
      let text = err.message;
      if (err.status === 429) {
        const wait = err.retryAfter || Number((/(\d+)\s*s/.exec(err.message) || [])[1]) || 0;
        text = wait ? `${t('locked', { s: wait })} (${err.message})` : err.message;
      }
      error.textContent = text;
      error.hidden = false;
      button.disabled = false;
      button.textContent = t('login');
    }
  });
  app().replaceChildren(form);
  renderChrome();
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

function pendingBadge(alertId) {
  const step = state.pending.get(alertId) || (state.correcting.has(alertId) ? 'correct' : null);
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

function renderInbox() {
  document.body.dataset.view = 'inbox';
  const list = sortedAlerts();
  const content = list.length
    ? h('ul', { class: 'alert-list', id: 'alert-list' }, list.map(alertRow))
    : h('p', { class: 'empty', id: 'alert-list-empty' }, t('inbox_empty'));
  const hello = state.staff && state.staff.name
    ? h('p', { class: 'muted hello' }, `${state.staff.name} · ${lookup('roles', state.staff.role)}`)
    : null;
  const problem = state.inboxError
    ? h('p', { class: 'form-error', id: 'inbox-error', role: 'alert' },
      state.inboxError === 'offline' ? `${t('offline')} ${list.length ? t('offline_copy') : ''}`.trim() : state.inboxError)
    : null;
  app().replaceChildren(h('section', { class: 'inbox' }, h('h1', {}, t('inbox')), hello, fleetCard(), pushCard(), problem, content));
  renderChrome();
}

async function loadInbox() {
  let body;
  try {
    body = await api('GET', '/v1/alerts?limit=50');
  } catch (err) {
    state.inboxError = err.status === 0 ? 'offline' : err.message;
    if (err.status === 0) await loadSavedInbox();
    throw err;
  }
  state.inboxError = null;
  state.alerts.clear();
  for (const a of body.alerts || []) { learnLabel(a); state.alerts.set(a.id, a); }
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
  app().replaceChildren(h('section', { class: 'fleet' },
    h('a', { class: 'back', href: '#/' }, `← ${t('back')}`),
    h('h1', {}, t('fleet_title')), fleetCard(), h('ul', { class: 'fleet-list', id: 'fleet-list' }, rows)));
  renderChrome();
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
      renderDetail(current, [t('corrected_ok'), 'ok']);
    } catch (err) {
      control.disabled = false;
      if (err.status === 0) {
        // Offline (#23): kept on the phone with the acknowledgements and resolves, sent in order
        // when the connection is back (feedback answers a repeat with the correction in force).
        await Store.queue.add({ kind: 'correct', alert_id: alert.id, body: labels });
        state.correcting.set(alert.id, { ...(state.correcting.get(alert.id) || {}), ...labels });
        registerSync();
        renderDetail(state.detail || alert, [t('queued_correct'), 'warn']);
      } else {
        msg.show(t('correct_failed', { detail: err.message }), 'error');
      }
    }
  };
  const chips = SENTIMENTS.map((value) => {
    const chip = h('button', {
      type: 'button',
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
        h('span', { class: 'muted' }, v.store_id || ''),
        v.amount ? h('span', {}, money(v.amount, 'KRW')) : null)))
      : h('p', { class: 'muted' }, t('no_visits')),
    storyTimeline(c.recent_contacts || []),
  );
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
        t(`contact_${c.status}`) + (c.outcome ? ` · ${OUTCOMES.includes(c.outcome) ? t(`out_${c.outcome}`) : c.outcome}` : ''))),
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
  const closed = alert.status === 'resolved';
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
  const why = plan.matched_because || [];
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
      h('ul', {}, why.map((w) => h('li', {}, typeof w === 'string' ? w : JSON.stringify(w))))) : null,
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

function who(staffId) {
  if (!staffId) return '—';
  return state.staff && staffId === state.staff.id ? `${state.staff.name || staffId} (${t('you')})` : staffId;
}

// [top card: acknowledge / who did what, bottom card: the resolve form or null]
function actionsCard(alert) {
  const topMsg = messageBox('action-msg');
  const parts = [];
  const act = async (button, msgBox, request, okText, queued) => {
    button.disabled = true;
    try {
      await request();
      await openDetail(alert.id, { flash: [okText, 'ok'] });
    } catch (err) {
      if (err.status === 0 && queued) {
        // Offline: kept on the phone and sent when the connection is back.
        await Store.queue.add({ ...queued, alert_id: alert.id });
        state.pending.set(alert.id, queued.kind);
        registerSync();
        renderDetail(state.detail || alert, [t(`queued_${queued.kind}`), 'warn']);
      } else if (err.status === 409) {
        // Someone else was quicker: not an error, just show the current state.
        await openDetail(alert.id, { flash: [t('already', { detail: err.message }), 'warn'] });
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
  const resolveBtn = h('button', { type: 'submit', class: 'btn btn-success btn-block', id: 'resolve-btn', disabled: true }, t('resolve'));
  select.addEventListener('change', () => { resolveBtn.disabled = !select.value; });
  const form = h('form', { class: 'resolve-form', id: 'resolve-form' },
    h('label', { for: 'outcome' }, t('outcome')), select,
    h('label', { for: 'note' }, t('note')), note, bottomMsg, resolveBtn);
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
    h('a', { class: 'back', href: '#/' }, `← ${t('back')}`),
    h('header', { class: `detail-head prio-edge-${alert.priority}` },
      h('div', { class: 'row-top' }, prioChip(alert.priority), kindChip(alert.kind), badge(alert.status), pendingBadge(alert.id), uncertainBadge(alert.classification),
        h('time', { class: 'age', dataset: { created: alert.created_at } }, ago(alert.created_at))),
      h('h1', { class: 'detail-title' }, alert.title)),
    degraded.length
      ? h('div', { class: 'warning', id: 'degraded', role: 'alert' }, h('strong', {}, t('degraded')),
        h('ul', {}, degraded.map((d) => h('li', {}, t(`degraded_${d}`)))))
      : null,
    flash ? h('p', { class: `flash msg-${flash[1]}`, id: 'flash', role: 'status' }, flash[0]) : null,
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
    return;
  }
  app().replaceChildren(view);
  renderChrome();
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
    app().replaceChildren(h('section', { class: 'card' },
      h('a', { class: 'back', href: '#/' }, `← ${t('back')}`),
      h('p', { class: 'form-error' }, t('load_failed', { detail: err.message }))));
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
  document.body.dataset.lastEvent = `${type}:${summary.id}`;
  const r = currentRoute();
  if (r.view === 'inbox') renderInbox();
  else if (r.view === 'detail' && r.id === summary.id && state.detail && (state.detail.status !== summary.status ||
    // A correction made elsewhere (another phone, the dashboard); an older one arriving late is not.
    correctedAt(summary.classification) > correctedAt(state.detail.classification))) {
    openDetail(summary.id);
  }
  if (type === 'alert.created' && isNew && r.view !== 'inbox') toast(`${t('new_alert')}: ${summary.title}`);
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

async function startSession() {
  document.body.dataset.session = 'ok';
  await loadPending();
  renderChrome();
  lastRoute = '';
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
    replayQueue().then(refreshInbox);
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
    renderLogin();
  }
  document.body.dataset.ready = '1';
}

boot();
