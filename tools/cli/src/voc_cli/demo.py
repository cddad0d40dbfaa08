"""Demo data for `make run`: stores, staff with passwords, customers, API keys, targets,
outreach assignments, the loyalty customers' earlier visits and a little feedback (each demo
manager's first dashboard screen has numbers against targets, outreach work and cases, #20).

Seeded over the services' admin REST APIs (the CLI never touches a service's tables), once:
the credentials are kept in $VOC_DATA_DIR/demo-credentials.json and reused on the next start.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx

STORES = [
    {
        "id": "store-gangnam",
        "name": "강남역점",
        "area_id": "area-seoul",
        "format": "restaurant",
        "region": "seoul",
        "timezone": "Asia/Seoul",
        "language": "ko",
    },
    {
        "id": "store-hongdae",
        "name": "홍대입구점",
        "area_id": "area-seoul",
        "format": "restaurant",
        "region": "seoul",
        "timezone": "Asia/Seoul",
        "language": "ko",
    },
    {
        "id": "store-busan",
        "name": "Busan Seomyeon",
        "area_id": "area-busan",
        "format": "retail",
        "region": "busan",
        "timezone": "Asia/Seoul",
        "language": "en",
    },
]

STAFF = [
    {
        "id": "staff-gn-1",
        "name": "박지훈",
        "role": "staff",
        "store_ids": ["store-gangnam"],
        "email": "jihoon@gangnam.demo",
    },
    {
        "id": "staff-gn-lead",
        "name": "김민지",
        "role": "shift_lead",
        "store_ids": ["store-gangnam"],
        "email": "minji@gangnam.demo",
    },
    {
        "id": "staff-gn-mgr",
        "name": "이서연",
        "role": "store_manager",
        "store_ids": ["store-gangnam"],
        "email": "seoyeon@gangnam.demo",
    },
    {
        "id": "staff-hd-lead",
        "name": "최유나",
        "role": "shift_lead",
        "store_ids": ["store-hongdae"],
        "email": "yuna@hongdae.demo",
    },
    {
        "id": "staff-hd-mgr",
        "name": "정우성",
        "role": "store_manager",
        "store_ids": ["store-hongdae"],
        "email": "woosung@hongdae.demo",
    },
    {
        "id": "staff-bs-lead",
        "name": "Alex Kim",
        "role": "shift_lead",
        "store_ids": ["store-busan"],
        "email": "alex@busan.demo",
        "language": "en",
    },
    {
        "id": "staff-bs-mgr",
        "name": "Sam Lee",
        "role": "store_manager",
        "store_ids": ["store-busan"],
        "email": "sam@busan.demo",
        "language": "en",
    },
    {
        "id": "staff-area-seoul",
        "name": "한지민",
        "role": "area_manager",
        "store_ids": [],
        "area_id": "area-seoul",
        "email": "jimin@area.demo",
    },
    {"id": "staff-cx", "name": "CX 본사", "role": "cx_admin", "store_ids": [], "email": "cx@hq.demo"},
    # Read-only, every store, no personal data out (voc_platform.identity.ROLE_PERMISSIONS).
    {
        "id": "staff-analyst",
        "name": "분석 본사",
        "role": "analyst",
        "store_ids": [],
        "email": "analyst@hq.demo",
    },
]

CUSTOMERS = [
    {
        "loyalty_id": "L-1001",
        "phone": "+82 10-1234-5678",  # international form: any VOC_PROFILE_DEFAULT_REGION reads it
        "email": "minsu.kim@example.com",  # the follow-up mail of the README's try reaches `voc demo-inbox`
        "name": "김민수",
        "tier": "vip",
        "lifetime_value": 8_200_000,
        "preferred_language": "ko",
        "home_store_id": "store-gangnam",
        "contact_consent": True,
    },
    {
        "loyalty_id": "L-1002",
        "phone": "+82 10-2222-3333",
        "name": "이영희",
        "tier": "gold",
        "lifetime_value": 1_900_000,
        "preferred_language": "ko",
        "home_store_id": "store-hongdae",
        "contact_consent": True,
    },
    {
        "loyalty_id": "L-1003",
        "email": "jane.park@example.com",
        "name": "Jane Park",
        "tier": "silver",
        "lifetime_value": 450_000,
        "preferred_language": "en",
        "home_store_id": "store-busan",
        "contact_consent": False,
    },
    {
        "loyalty_id": "L-1004",
        "phone": "+82 10-9876-5432",
        "name": "박준호",
        "tier": "basic",
        "lifetime_value": 120_000,
        "preferred_language": "ko",
        "home_store_id": "store-gangnam",
    },
    {
        "loyalty_id": "L-1005",
        "phone": "+82 10-4455-6677",
        "name": "최서연",
        "tier": "silver",
        "lifetime_value": 610_000,
        "preferred_language": "ko",
        "home_store_id": "store-busan",
        "contact_consent": True,
    },
]


# Targets (#20 §5): the Seoul area's, one Gangnam override, Busan's. Each manager's dashboard
# opens on their numbers against these.
TARGETS = [
    {"area_id": "area-seoul", "metric": "nps", "value": 30},
    {"area_id": "area-seoul", "metric": "csat", "value": 4.0},
    {"area_id": "area-seoul", "metric": "ack_minutes", "value": 5},
    {"area_id": "area-seoul", "metric": "resolve_minutes", "value": 30},
    {"area_id": "area-seoul", "metric": "recovery_rate", "value": 0.6},
    {"store_id": "store-gangnam", "metric": "nps", "value": 40},
    {"area_id": "area-busan", "metric": "nps", "value": 20},
    {"area_id": "area-busan", "metric": "csat", "value": 3.8},
    {"area_id": "area-busan", "metric": "ack_minutes", "value": 10},
]
# Outreach work (#20 §4): (customer's loyalty id, list, store, assignee, contacts recorded).
ASSIGNMENTS: list[tuple[str, str, str, str, list[dict[str, str]]]] = [
    (
        "L-1001",
        "low_satisfaction",
        "store-gangnam",
        "staff-gn-lead",
        [
            {"channel": "phone", "outcome": "no_answer"},
            {"channel": "kakao", "outcome": "reached", "note": "사과드리고 다음 방문 때 디저트를 약속드림"},
        ],
    ),
    ("L-1004", "churn_risk", "store-gangnam", "staff-gn-1", []),
    ("L-1002", "score_swing", "store-hongdae", "staff-hd-lead", [{"channel": "sms", "outcome": "callback"}]),
    # Not L-1003 at Busan: she opted out of contact, and profile refuses to assign her.
    ("L-1005", "chronic_complainer", "store-busan", "staff-bs-lead", []),
]


# A little feedback per store (#20 "a useful first screen"): ratings against the targets, one
# complaint per store (an open case; one customer each, so no pattern alert). Posted with a
# seeding key per store, revoked after, at most 2 items a key (the intake's burst may be that low).
FEEDBACK: dict[str, list[dict[str, Any]]] = {
    "store-gangnam": [
        {
            "channel": "kiosk",
            "ratings": {"csat": 5, "nps": 10},
            "text": "직원분들이 친절하고 음식이 빨리 나왔어요.",
        },
        {"channel": "app", "ratings": {"csat": 4, "nps": 8}},
        {"channel": "kiosk", "ratings": {"csat": 2, "nps": 3}, "text": "주문하고 30분 넘게 기다렸어요."},
    ],
    "store-hongdae": [
        {"channel": "kiosk", "ratings": {"csat": 5, "nps": 9}, "text": "매장이 깨끗하고 분위기가 좋아요."},
        {"channel": "app", "ratings": {"csat": 3, "nps": 6}},
        {
            "channel": "web",
            "ratings": {"csat": 1, "nps": 1},
            "text": "테이블이 끈적거리고 바닥이 더러웠어요.",
        },
    ],
    "store-busan": [
        {"channel": "kiosk", "ratings": {"csat": 4, "nps": 9}, "text": "Friendly staff, quick service."},
        {
            "channel": "app",
            "ratings": {"csat": 2, "nps": 4},
            "text": "The staff ignored us for twenty minutes.",
        },
    ],
}


def _seed_feedback(client: httpx.Client, urls: dict[str, str]) -> None:
    for store_id, items in FEEDBACK.items():
        for start in range(0, len(items), 2):
            key = _check(
                client.post(
                    f"{urls['feedback']}/v1/admin/api-keys",
                    json={"name": f"demo seeding {store_id}", "store_ids": [store_id]},
                )
            )
            for item in items[start : start + 2]:
                _check(
                    client.post(
                        f"{urls['feedback']}/v1/feedback",
                        json={"store_id": store_id, **item},
                        headers={"Authorization": f"Bearer {key['api_key']}"},
                    )
                )
            _check(client.delete(f"{urls['feedback']}/v1/admin/api-keys/{key['id']}"))


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:500]}"
        )
    return response.json() if response.content else None


# Earlier visits from the POS (#18 "history across channels"), days before now: the VIP a
# regular at Gangnam who also tried Hongdae, the gold member at Hongdae, and the basic member's
# visits stopping two months ago (the churn-risk list he is on). Imported as history
# (`/v1/visits:import`), so they page nobody.
VISITS: list[tuple[str, str, int, int]] = [  # (loyalty id, store, days ago, amount in won)
    ("L-1001", "store-gangnam", 118, 86_000),
    ("L-1001", "store-gangnam", 95, 124_000),
    ("L-1001", "store-hongdae", 71, 58_000),
    ("L-1001", "store-gangnam", 44, 97_000),
    ("L-1001", "store-gangnam", 23, 142_000),
    ("L-1001", "store-gangnam", 9, 76_000),
    ("L-1002", "store-hongdae", 52, 41_000),
    ("L-1002", "store-hongdae", 30, 39_000),
    ("L-1002", "store-hongdae", 12, 45_000),
    ("L-1004", "store-gangnam", 96, 18_000),
    ("L-1004", "store-gangnam", 63, 22_000),
]


def _seed_visits(client: httpx.Client, urls: dict[str, str]) -> None:
    now = time.time()
    lines = [
        json.dumps({"loyalty_id": who, "store_id": store, "visited_at": now - days * 86400, "amount": amount})
        for who, store, days, amount in VISITS
    ]
    _check(
        client.post(
            f"{urls['profile']}/v1/visits:import",
            content="\n".join(lines).encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
    )


def _seed_work(client: httpx.Client, urls: dict[str, str], customers: dict[str, str]) -> None:
    """Targets at feedback, outreach assignments and their contacts at profile."""
    for target in TARGETS:
        _check(client.put(f"{urls['feedback']}/v1/targets", json=target))
    for loyalty_id, list_kind, store_id, assignee, contacts in ASSIGNMENTS:
        assignment = _check(
            client.post(
                f"{urls['profile']}/v1/outreach/assignments",
                json={
                    "customer_id": customers[loyalty_id],
                    "list_kind": list_kind,
                    "store_id": store_id,
                    "assignee_id": assignee,
                },
            )
        )
        for contact in contacts:
            _check(
                client.post(
                    f"{urls['profile']}/v1/outreach/assignments/{assignment['id']}/contacts", json=contact
                )
            )


def seed(
    *, urls: dict[str, str], admin_token: str, credentials_path: Path, feedback: bool = False
) -> dict[str, Any]:
    """Seed when the credentials file is absent or stale; return the credentials document.
    `feedback`: import `VISITS` and post `FEEDBACK` too (`voc up` does; tests that count what
    they post do not)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(timeout=30.0, headers=headers, trust_env=False) as client:
        if credentials_path.exists():
            existing: dict[str, Any] = json.loads(credentials_path.read_text())
            keys = _check(client.get(f"{urls['feedback']}/v1/admin/api-keys"))
            live = {k["prefix"] for k in keys if not k["revoked_at"]}
            if existing.get("stores") and all(s["api_key"][:12] in live for s in existing["stores"]):
                existing.update({f"{n}_url": u for n, u in urls.items()})
                existing["admin_token"] = admin_token
                credentials_path.write_text(json.dumps(existing, ensure_ascii=False, indent=2))
                return existing
        _check(client.put(f"{urls['notify']}/v1/admin/stores", json=STORES))
        _check(
            client.put(
                f"{urls['feedback']}/v1/admin/stores",
                json=[{k: s[k] for k in ("id", "name", "area_id")} for s in STORES],
            )
        )
        staff_out = []
        staff_in = []
        for person in STAFF:
            password = "demo-" + secrets.token_urlsafe(6)
            staff_in.append({"area_id": None, **person, "password": password})  # language: the store's
            staff_out.append(
                {
                    "id": person["id"],
                    "name": person["name"],
                    "role": person["role"],
                    "store_ids": person["store_ids"],
                    "email": person["email"],
                    "password": password,
                }
            )
        _check(client.put(f"{urls['notify']}/v1/admin/staff", json=staff_in))
        upserted = _check(client.post(f"{urls['profile']}/v1/customers", json={"customers": CUSTOMERS}))
        _seed_work(
            client,
            urls,
            {str(c["loyalty_id"]): r["customer_id"] for c, r in zip(CUSTOMERS, upserted, strict=True)},
        )
        stores_out = []
        for store in STORES:
            created = _check(
                client.post(
                    f"{urls['feedback']}/v1/admin/api-keys",
                    json={"name": f"demo {store['name']}", "store_ids": [store["id"]]},
                )
            )
            stores_out.append({"id": store["id"], "name": store["name"], "api_key": created["api_key"]})
        if feedback:
            _seed_visits(client, urls)
            _seed_feedback(client, urls)
    document = {
        **{f"{name}_url": url for name, url in urls.items()},
        "admin_token": admin_token,
        "stores": stores_out,
        "staff": staff_out,
    }
    credentials_path.parent.mkdir(parents=True, exist_ok=True)
    credentials_path.write_text(json.dumps(document, ensure_ascii=False, indent=2))
    credentials_path.chmod(0o600)
    return document
