"""Web Push sender against the local push-service emulator (real HTTP over loopback)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import email.utils
import json
import os
import socket
import ssl
import stat
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import http_ece
import httpx
import jwt
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.push_emulator import PushEmulator
from tests.support.resolvers import LoopbackResolver
from voc_notify.webpush import (
    DEFAULT_PUSH_HOSTS,
    MAX_PAYLOAD_BYTES,
    EndpointNotAllowed,
    InvalidSubscription,
    PayloadTooLarge,
    PushAllowlist,
    PushSubscription,
    VapidKeys,
    WebPushSender,
    b64url_decode,
    b64url_encode,
    backoff_delay,
    encrypt_aes128gcm,
    normalize_topic,
    parse_retry_after,
)

SUBJECT = "mailto:ops@frontline-voc.example"


@pytest.fixture(scope="module")
def emu() -> Iterator[PushEmulator]:
    with PushEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def vapid() -> VapidKeys:
    return VapidKeys.generate()


@asynccontextmanager
async def make_sender(
    emulator: PushEmulator, keys: VapidKeys, extra_hosts: tuple[str, ...] | list[str] = ()
) -> AsyncIterator[WebPushSender]:
    sender = WebPushSender(
        vapid=keys,
        subject=SUBJECT,
        allowlist=PushAllowlist([*DEFAULT_PUSH_HOSTS, f"127.0.0.1:{emulator.port}", *extra_hosts]),
        timeout=2.0,
    )
    try:
        yield sender
    finally:
        await sender.aclose()


def new_sub(emulator: PushEmulator, label: str | None = None, **kw: Any) -> tuple[str, PushSubscription]:
    data = emulator.new_subscription(label, **kw)
    return PushEmulator.subscription_id(data), PushSubscription.from_json(data)


def fake_keys() -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": b64url_encode(point), "auth": b64url_encode(os.urandom(16))}


# --------------------------------------------------------------------------- encryption


def test_rfc8291_appendix_a_vector() -> None:
    """Byte-exact RFC 8291 Appendix A output (fixed salt and server key)."""
    as_priv = ec.derive_private_key(
        int.from_bytes(b64url_decode("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"), "big"),
        ec.SECP256R1(),
    )
    body = encrypt_aes128gcm(
        b"When I grow up, I want to be a watermelon",
        b64url_decode(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
        ),
        b64url_decode("BTBZMqHH6r4Tts7J_aSIgg"),
        salt=b64url_decode("DGv6ra1nlYgDCS1FRnbzlw"),
        as_private=as_priv,
    )
    assert b64url_encode(body) == (
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYW"
        "AmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgS"
        "xsj_Qulcy4a-fN"
    )


def test_max_payload_fits_one_4096_record() -> None:
    ua = ec.generate_private_key(ec.SECP256R1())
    pub = ua.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = os.urandom(16)
    body = encrypt_aes128gcm(b"x" * MAX_PAYLOAD_BYTES, pub, auth)
    assert len(body) == 4096
    assert http_ece.decrypt(body, private_key=ua, auth_secret=auth, version="aes128gcm") == (
        b"x" * MAX_PAYLOAD_BYTES
    )
    with pytest.raises(PayloadTooLarge):
        encrypt_aes128gcm(b"x" * (MAX_PAYLOAD_BYTES + 1), pub, auth)


# --------------------------------------------------------------------------- round trip


async def test_payload_round_trip_korean_json_and_headers(emu: PushEmulator, vapid: VapidKeys) -> None:
    sid, sub = new_sub(emu, "staff-phone-1")
    message = {"title": "새 고객 피드백", "body": "강남점: 매장이 너무 추워요 🥶", "ticket": 42}
    payload = json.dumps(message, ensure_ascii=False).encode("utf-8")
    async with make_sender(emu, vapid) as sender:
        result = await sender.send(sub, payload, ttl=120, urgency="high", topic="ticket-42")
    assert result.status == "accepted", result
    assert result.http_status == 201
    assert result.detail.startswith(f"{emu.base_url}/m/")  # Location
    (push,) = emu.received(sid)
    assert push.label == "staff-phone-1"
    assert push.payload == payload
    assert push.json == message
    assert push.headers["ttl"] == "120"
    assert push.urgency == "high"
    assert push.topic == "ticket-42"
    assert push.headers["content-encoding"] == "aes128gcm"
    assert push.headers["authorization"].startswith("vapid t=")
    assert push.headers["authorization"].endswith(f", k={vapid.public_key_b64url}")
    assert abs(push.received_at - time.time()) < 5


async def test_topic_normalised_and_argument_validation(emu: PushEmulator, vapid: VapidKeys) -> None:
    sid, sub = new_sub(emu)
    long_topic = "feedback/store-gangnam/ticket-000000000042"  # too long + '/' not allowed
    async with make_sender(emu, vapid) as sender:
        result = await sender.send(sub, b"{}", ttl=0, urgency="very-low", topic=long_topic)
        assert result.status == "accepted"
        with pytest.raises(ValueError, match="urgency"):
            await sender.send(sub, b"{}", ttl=10, urgency="urgent")
        with pytest.raises(ValueError, match="ttl"):
            await sender.send(sub, b"{}", ttl=-1)
        with pytest.raises(PayloadTooLarge):
            await sender.send(sub, b"x" * (MAX_PAYLOAD_BYTES + 1), ttl=10)
    (push,) = emu.received(sid)
    assert push.topic == normalize_topic(long_topic)
    assert push.topic is not None and len(push.topic) == 32
    assert normalize_topic(long_topic) == normalize_topic(long_topic)  # deterministic
    assert normalize_topic("ok_Topic-1") == "ok_Topic-1"
    assert push.urgency == "very-low" and push.ttl == 0
    with pytest.raises(ValueError, match="subject"):
        WebPushSender(vapid=vapid, subject="ops@example.com", allowlist=PushAllowlist())


async def test_empty_payload_is_sent_without_body(emu: PushEmulator, vapid: VapidKeys) -> None:
    sid, sub = new_sub(emu)
    async with make_sender(emu, vapid) as sender:
        assert (await sender.send(sub, b"", ttl=30)).status == "accepted"
    (push,) = emu.received(sid)
    assert push.payload == b"" and push.json is None
    assert "content-encoding" not in push.headers
    assert "content-type" not in push.headers and push.headers["content-length"] == "0"


# --------------------------------------------------------------------------- VAPID


async def test_vapid_token_cached_per_audience(emu: PushEmulator, vapid: VapidKeys) -> None:
    sid, sub = new_sub(emu)
    async with PushEmulator() as other:
        osid, osub = new_sub(other)
        async with make_sender(emu, vapid, extra_hosts=[f"127.0.0.1:{other.port}"]) as sender:
            for _ in range(3):
                assert (await sender.send(sub, b"1", ttl=5)).status == "accepted"
            assert (await sender.send(osub, b"2", ttl=5)).status == "accepted"
        tokens = {p.vapid_token for p in emu.received(sid)}
        assert len(tokens) == 1  # reused for the same audience
        (other_push,) = other.received(osid)
        assert other_push.vapid_token not in tokens  # different audience, own token

    token = tokens.pop()
    assert token is not None
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == emu.origin
    assert claims["sub"] == SUBJECT
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    other_claims = jwt.decode(other_push.vapid_token or "", options={"verify_signature": False})
    assert other_claims["aud"] == other.origin


async def test_vapid_token_refreshed_one_hour_before_expiry(vapid: VapidKeys) -> None:
    now = [1_000_000.0]
    sender = WebPushSender(
        vapid=vapid,
        subject=SUBJECT,
        allowlist=PushAllowlist(),
        jwt_lifetime=12 * 3600,
        clock=lambda: now[0],
    )
    try:
        aud = "https://fcm.googleapis.com"
        first = sender.vapid_token(aud)
        now[0] += 10 * 3600  # 2 h before exp: still reused
        assert sender.vapid_token(aud) == first
        now[0] += 1.5 * 3600  # 30 min before exp: re-signed
        second = sender.vapid_token(aud)
        assert second != first
        exp = jwt.decode(second, options={"verify_signature": False})["exp"]
        assert exp == int(now[0] + 12 * 3600)
    finally:
        await sender.aclose()


async def test_emulator_rejects_bad_vapid(emu: PushEmulator, vapid: VapidKeys) -> None:
    _, sub = new_sub(emu)
    impostor = VapidKeys.generate()
    async with make_sender(emu, vapid) as sender, httpx.AsyncClient() as raw:
        good = sender.build_request(sub, b"hi", ttl=10)

        async def post(auth: str | None) -> int:
            headers = dict(good.headers)
            headers.pop("authorization", None)
            headers.pop("Authorization", None)
            if auth is not None:
                headers["authorization"] = auth
            resp = await raw.post(str(good.url), content=good.content, headers=headers)
            return resp.status_code

        token = sender.vapid_token(emu.origin)
        # signed by our key, but k= claims another key -> signature does not verify
        assert await post(f"vapid t={token}, k={impostor.public_key_b64url}") == 401
        # signed by another key, k= is ours
        forged = impostor.sign_jwt(emu.origin, SUBJECT, int(time.time()) + 3600)
        assert await post(f"vapid t={forged}, k={vapid.public_key_b64url}") == 401
        # wrong audience, expired, too far ahead, bad sub, missing header
        wrong_aud = vapid.sign_jwt("https://fcm.googleapis.com", SUBJECT, int(time.time()) + 60)
        assert await post(f"vapid t={wrong_aud}, k={vapid.public_key_b64url}") == 401
        expired = vapid.sign_jwt(emu.origin, SUBJECT, int(time.time()) - 10)
        assert await post(f"vapid t={expired}, k={vapid.public_key_b64url}") == 401
        too_far = vapid.sign_jwt(emu.origin, SUBJECT, int(time.time()) + 25 * 3600)
        assert await post(f"vapid t={too_far}, k={vapid.public_key_b64url}") == 401
        bad_sub = vapid.sign_jwt(emu.origin, "ops@example.com", int(time.time()) + 60)
        assert await post(f"vapid t={bad_sub}, k={vapid.public_key_b64url}") == 401
        assert await post(None) == 401
        # and the untouched request is fine
        assert await post(good.headers["Authorization"]) == 201


async def test_application_server_key_mismatch_is_403(emu: PushEmulator, vapid: VapidKeys) -> None:
    _, sub = new_sub(emu, application_server_key=vapid.public_key_b64url)
    async with make_sender(emu, VapidKeys.generate()) as wrong, make_sender(emu, vapid) as right:
        result = await wrong.send(sub, b"x", ttl=10)
        assert (result.status, result.http_status) == ("rejected", 403)
        assert (await right.send(sub, b"x", ttl=10)).status == "accepted"


# --------------------------------------------------------------------------- classification


async def test_gone_retry_and_recovery(emu: PushEmulator, vapid: VapidKeys) -> None:
    sid, sub = new_sub(emu)
    unknown = PushSubscription.from_json(
        {"endpoint": f"{emu.base_url}/push/nope-not-a-subscription", "keys": fake_keys()}
    )
    async with make_sender(emu, vapid) as sender:
        r404 = await sender.send(unknown, b"x", ttl=10)
        assert (r404.status, r404.http_status) == ("gone", 404)

        emu.fail_next(sid, 429, retry_after=7)
        r429 = await sender.send(sub, b"x", ttl=10)
        assert (r429.status, r429.http_status, r429.retry_after) == ("retry", 429, 7.0)
        assert backoff_delay(0, r429.retry_after) >= 7.0

        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        emu.fail_next(sid, 503, retry_after=when)
        r503 = await sender.send(sub, b"x", ttl=10)
        assert r503.status == "retry" and r503.retry_after is not None
        assert 27 <= r503.retry_after <= 30

        emu.fail_next(sid, 500, count=2)
        assert [(await sender.send(sub, b"x", ttl=10)).status for _ in range(3)] == [
            "retry",
            "retry",
            "accepted",
        ]
        emu.fail_next(sid, 413)
        assert (await sender.send(sub, b"x", ttl=10)).status == "rejected"
        emu.fail_next(sid, 302)
        r302 = await sender.send(sub, b"x", ttl=10)
        assert (r302.status, r302.http_status) == ("rejected", 302)

        emu.expire(sid)
        r410 = await sender.send(sub, b"x", ttl=10)
        assert (r410.status, r410.http_status) == ("gone", 410)
    assert len(emu.received(sid)) == 1
    assert emu.attempts(sid) == 8


async def test_network_error_is_retry(vapid: VapidKeys) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sub = PushSubscription.from_json({"endpoint": f"http://127.0.0.1:{port}/push/x", "keys": fake_keys()})
    sender = WebPushSender(vapid=vapid, subject=SUBJECT, allowlist=PushAllowlist([f"127.0.0.1:{port}"]))
    try:
        result = await sender.send(sub, b"x", ttl=10)
    finally:
        await sender.aclose()
    assert result.status == "retry" and result.http_status is None
    assert result.detail == "network error"  # not the OS's words, which name the address


@pytest.mark.parametrize(
    ("status", "outcome", "detail"),
    [
        (400, "rejected", "HTTP 400 Bad Request"),
        (404, "gone", "HTTP 404 Not Found"),
        (500, "retry", "HTTP 500 Internal Server Error"),
        (299, "accepted", ""),
        (302, "rejected", "HTTP 302 Found: redirect not followed"),
        (599, "retry", "HTTP 599"),
    ],
)
async def test_a_failed_push_keeps_only_its_status_line(
    status: int, outcome: str, detail: str, vapid: VapidKeys
) -> None:
    """Whatever a push endpoint answers is shown to managers in the delivery receipts: an
    endpoint on a local service would otherwise read that service's answers out to them."""

    async def leaky(_request: web.Request) -> web.Response:
        return web.Response(
            status=status,
            reason="Leaky Reason",
            text="redis at 10.0.0.5:6379: NOAUTH Authentication required",
            headers={"Location": "http://127.0.0.1:1/next"} if status == 302 else {},
        )

    app = web.Application()
    app.router.add_post("/{tail:.*}", leaky)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sub = PushSubscription.from_json({"endpoint": f"http://127.0.0.1:{port}/push/x", "keys": fake_keys()})
    sender = WebPushSender(vapid=vapid, subject=SUBJECT, allowlist=PushAllowlist([f"127.0.0.1:{port}"]))
    try:
        result = await sender.send(sub, b"x", ttl=10)
    finally:
        await sender.aclose()
        await runner.cleanup()
    assert (result.status, result.http_status, result.detail) == (outcome, status, detail)


# --------------------------------------------------------------------------- allowlist / SSRF

BLOCKED = [
    "https://evil.example/push/1",
    "https://fcm.googleapis.com@evil.example/",
    "https://user:pw@fcm.googleapis.com/fcm/send/x",
    "https://fcm.googleapis.com.evil.example/x",
    "https://api.push.apple.com.evil.example/x",
    "https://push.apple.com/x",  # wildcard does not match the apex
    "https://evilpush.apple.com/x",
    "https://142.250.74.10/fcm/send/x",
    "https://[2a00:1450:4001::200a]/x",
    "https://127.0.0.1/x",
    "http://fcm.googleapis.com/fcm/send/x",
    "http://10.0.0.7:8080/push/x",
    "https://fcm.googleapis.com:8443/fcm/send/x",
    "ftp://fcm.googleapis.com/x",
    "file:///etc/passwd",
    "https://fcm.googleapis.com\\@evil.example/",
    "https://fcm.googleapis.com/x#frag",
    "https://fcm.googleapis.com /x",
    "https:///x",
    "//fcm.googleapis.com/x",
]

ALLOWED = [
    "https://fcm.googleapis.com/fcm/send/abc:def",
    "https://FCM.googleapis.com:443/wp/abc",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
    "https://api.push.apple.com/3/device/x",
    "https://web.push.apple.com/QGx",
    "https://db5p.notify.windows.com/w/?token=abc",
]


@dataclass
class FakePushServices:
    """An aiohttp session whose every host name resolves to one local TLS server (which
    answers 201 and records what it received), for pushes to the real push services'
    endpoints without leaving the machine."""

    session: aiohttp.ClientSession
    seen: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)


def _self_signed_tls(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "push.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ctx


@asynccontextmanager
async def fake_push_services(tmp: Path) -> AsyncIterator[FakePushServices]:
    async def handler(request: web.Request) -> web.Response:
        fake.seen.append(request)
        fake.bodies.append(await request.read())
        return web.Response(status=201, headers={"Location": "https://x/m/1"})

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock, ssl_context=_self_signed_tls(tmp))
    await site.start()
    connector = aiohttp.TCPConnector(ssl=False, resolver=LoopbackResolver(sock.getsockname()[1]))
    fake = FakePushServices(aiohttp.ClientSession(connector=connector))
    try:
        yield fake
    finally:
        await fake.session.close()
        await runner.cleanup()


@pytest.mark.parametrize("endpoint", BLOCKED)
async def test_allowlist_blocks_before_any_request(endpoint: str, vapid: VapidKeys, tmp_path: Path) -> None:
    sub = PushSubscription(endpoint=endpoint, **fake_keys())  # bypass from_json on purpose
    async with fake_push_services(tmp_path) as fake:
        sender = WebPushSender(vapid=vapid, subject=SUBJECT, allowlist=PushAllowlist(), client=fake.session)
        try:
            with pytest.raises(EndpointNotAllowed):
                await sender.send(sub, b"secret", ttl=10)
        finally:
            await sender.aclose()
        assert not fake.session.closed  # an injected session belongs to the caller
    assert fake.seen == []
    assert not PushAllowlist().allows(endpoint)
    with pytest.raises(InvalidSubscription) as info:
        PushSubscription.from_json({"endpoint": endpoint, "keys": fake_keys()}, allowlist=PushAllowlist())
    assert info.value.field == "endpoint"


async def test_allowlist_allows_push_services(vapid: VapidKeys, tmp_path: Path) -> None:
    async with fake_push_services(tmp_path) as fake:
        sender = WebPushSender(vapid=vapid, subject=SUBJECT, allowlist=PushAllowlist(), client=fake.session)
        try:
            for endpoint in ALLOWED:
                sub = PushSubscription.from_json(
                    {"endpoint": endpoint, "keys": fake_keys()}, allowlist=PushAllowlist()
                )
                result = await sender.send(sub, b"x", ttl=10)
                assert (result.status, result.http_status, result.detail) == (
                    "accepted",
                    201,
                    "https://x/m/1",
                )
        finally:
            await sender.aclose()
    assert [r.host for r in fake.seen] == [httpx.URL(e).host for e in ALLOWED]  # Host: no default port
    assert [r.raw_path for r in fake.seen] == [httpx.URL(e).raw_path.decode() for e in ALLOWED]
    # "x" + delimiter, encrypted: 86 octets of header, 2 of ciphertext, 16 of tag
    assert [len(body) for body in fake.bodies] == [86 + 2 + 16] * len(ALLOWED)
    assert {r.headers["content-encoding"] for r in fake.seen} == {"aes128gcm"}
    claims = jwt.decode(
        fake.seen[1].headers["authorization"].split("t=")[1].split(",")[0],
        options={"verify_signature": False},
    )
    assert claims["aud"] == "https://fcm.googleapis.com"  # default port omitted from origin


@pytest.mark.parametrize(
    ("endpoint", "target"),
    [
        ("https://db5p.notify.windows.com/w/?token=ab%2bc%3d%3D", "/w/?token=ab%2bc%3d%3D"),  # verbatim
        ("https://fcm.googleapis.com/a/./b/../c", "/a/c"),
        ("https://fcm.googleapis.com/../x/%2e%2e/y", "/x/%2e%2e/y"),
        (
            'https://fcm.googleapis.com/p{1}`<2>"|^%zz?q=<{|}>"`',
            "/p%7B1%7D%60%3C2%3E%22|^%zz?q=%3C{|}%3E%22`",
        ),
        ("https://fcm.googleapis.com?x=1", "/?x=1"),
        ("https://fcm.googleapis.com", "/"),
    ],
)
def test_request_target_is_sent_as_given(endpoint: str, target: str) -> None:
    """Existing escapes are kept byte for byte, dot segments dropped, unsafe characters
    escaped; the same request target httpx (the sender's previous client) produced."""
    assert PushAllowlist().parse(endpoint).raw_path_qs == target
    assert httpx.URL(endpoint).raw_path.decode() == target


async def test_idle_keepalive_connections_capped(emu: PushEmulator, vapid: VapidKeys) -> None:
    """At most 100 idle keep-alive connections stay pooled (of up to 200 open)."""
    _, sub = new_sub(emu)
    async with make_sender(emu, vapid) as sender:
        results = await asyncio.gather(*(sender.send(sub, b"{}", ttl=5) for _ in range(150)))
        assert {r.status for r in results} == {"accepted"}
        connector = sender._session().connector
        assert isinstance(connector, aiohttp.BaseConnector)
        idle = sum(map(len, connector._conns.values()))
        assert 0 < idle <= 100
        assert (await sender.send(sub, b"{}", ttl=5)).status == "accepted"  # reuses one


def test_sender_built_outside_a_loop_and_closed(emu: PushEmulator, vapid: VapidKeys) -> None:
    """The session is created lazily on the running loop (the service builds the sender
    before its loop runs); after aclose() the sender refuses to send."""
    _, sub = new_sub(emu)
    sender = WebPushSender(
        vapid=vapid, subject=SUBJECT, allowlist=PushAllowlist([f"127.0.0.1:{emu.port}"]), timeout=2.0
    )

    async def use() -> None:
        assert (await sender.send(sub, b"{}", ttl=5)).status == "accepted"
        await sender.aclose()
        await sender.aclose()  # idempotent
        with pytest.raises(RuntimeError, match="closed"):
            await sender.send(sub, b"{}", ttl=5)

    asyncio.run(use())


async def test_read_timeout_is_retry(vapid: VapidKeys) -> None:
    """A push service that accepts the connection but never answers: a timeout -> retry."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sub = PushSubscription.from_json({"endpoint": f"http://127.0.0.1:{port}/push/x", "keys": fake_keys()})
    sender = WebPushSender(
        vapid=vapid, subject=SUBJECT, allowlist=PushAllowlist([f"127.0.0.1:{port}"]), timeout=0.3
    )
    try:
        started = time.monotonic()
        result = await sender.send(sub, b"x", ttl=10)
        elapsed = time.monotonic() - started
    finally:
        await sender.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert (result.status, result.http_status) == ("retry", None)
    assert result.detail == "timeout"
    assert 0.25 <= elapsed < 1.5


def test_allowlist_ports_and_loopback_http() -> None:
    allow = PushAllowlist(["127.0.0.1:8080", "localhost:*", "[::1]:9000"])
    allow.check("http://127.0.0.1:8080/push/x")
    allow.check("http://localhost:1234/push/x")
    allow.check("http://[::1]:9000/push/x")
    for bad in ("http://127.0.0.1:8081/x", "http://127.0.0.2:8080/x", "http://[::1]:9001/x"):
        assert not allow.allows(bad)
    assert not PushAllowlist(["10.1.2.3:*"]).allows("http://10.1.2.3:80/x")  # http non-loopback


# --------------------------------------------------------------------------- subscriptions


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["keys"].update(p256dh="not base64!!"), "keys.p256dh"),
        (lambda d: d["keys"].update(p256dh=b64url_encode(b"\x02" + os.urandom(32))), "keys.p256dh"),
        (lambda d: d["keys"].update(p256dh=b64url_encode(b"\x04" + b"\x01" * 64)), "keys.p256dh"),
        (lambda d: d["keys"].update(auth=b64url_encode(os.urandom(8))), "keys.auth"),
        (lambda d: d["keys"].update(auth="%%%"), "keys.auth"),
        (lambda d: d["keys"].pop("auth"), "keys.auth"),
        (lambda d: d["keys"].pop("p256dh"), "keys.p256dh"),
        (lambda d: d.pop("keys"), "keys"),
        (lambda d: d.pop("endpoint"), "endpoint"),
        (lambda d: d.update(endpoint=12), "endpoint"),
        (lambda d: d.update(endpoint="http://fcm.googleapis.com/fcm/send/x"), "endpoint"),
        (lambda d: d.update(endpoint="javascript:alert(1)"), "endpoint"),
    ],
)
def test_malformed_subscription(mutate: Any, field: str) -> None:
    data: dict[str, Any] = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/x",
        "keys": fake_keys(),
    }
    mutate(data)
    with pytest.raises(InvalidSubscription) as info:
        PushSubscription.from_json(data)
    assert info.value.field == field


def test_subscription_accepts_padded_and_standard_base64() -> None:
    keys = fake_keys()
    raw = b64url_decode(keys["p256dh"])
    data = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/x",
        "keys": {"p256dh": base64.b64encode(raw).decode(), "auth": keys["auth"] + "=="},
    }
    sub = PushSubscription.from_json(data)
    assert sub.p256dh == keys["p256dh"] and sub.auth == keys["auth"]  # normalised
    assert PushSubscription.from_json(sub.to_json()) == sub


# --------------------------------------------------------------------------- keys, backoff


def test_vapid_keys_persist_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "vapid.pem"
    first = VapidKeys.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind
    again = VapidKeys.load_or_create(path)
    assert again.public_key_b64url == first.public_key_b64url
    assert len(b64url_decode(first.public_key_b64url)) == 65
    assert "=" not in first.public_key_b64url
    path.chmod(0o644)
    VapidKeys.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_backoff_delay_bounds() -> None:
    for attempt in range(40):
        nominal = min(60.0, 0.5 * 2**attempt)
        for _ in range(20):
            d = backoff_delay(attempt, None)
            assert nominal / 2 <= d <= nominal
    assert backoff_delay(-3, None) <= 0.5
    assert backoff_delay(0, 120.0) == 120.0  # Retry-After beyond the cap is honoured
    assert backoff_delay(10, 1.0) >= 30.0  # ...but never shortens the exponential delay
    assert backoff_delay(0, 10 * 24 * 3600.0) == 3600.0  # absurd values are capped


def test_parse_retry_after() -> None:
    now = time.time()
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    date = email.utils.formatdate(now + 60, usegmt=True)
    assert 58 <= (parse_retry_after(date, now=now) or 0) <= 60
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True)) == 0.0


# --------------------------------------------------------------------------- emulator itself


async def test_emulator_in_loop_waiters_and_counts(vapid: VapidKeys) -> None:
    async with PushEmulator() as local, make_sender(local, vapid) as sender:
        _, sub = new_sub(local, "in-loop")
        for i in range(5):
            assert (await sender.send(sub, json.dumps({"n": i}).encode(), ttl=5)).status == ("accepted")
        push = await local.wait_for(lambda p: p.json == {"n": 3}, timeout=1)
        assert push.label == "in-loop"
        with pytest.raises(TimeoutError):
            await local.wait_for(lambda p: p.json == {"n": 99}, timeout=0.05)
        with pytest.raises(RuntimeError):
            local.wait_for_count(99, timeout=0.1)  # would deadlock its own loop
        local.clear()
        assert local.received() == []


async def test_emulator_thread_mode_blocking_wait(emu: PushEmulator, vapid: VapidKeys) -> None:
    sid, sub = new_sub(emu)
    async with make_sender(emu, vapid) as sender:
        for _ in range(20):
            await sender.send(sub, b"{}", ttl=5)
    assert len(emu.wait_for_count(20, timeout=1, subscription_id=sid)) == 20
    with pytest.raises(TimeoutError):
        emu.wait_for_count(21, timeout=0.05, subscription_id=sid)
    push = await emu.wait_for(lambda p: p.subscription_id == sid, timeout=1)
    assert push.payload == b"{}"


def test_an_allowed_endpoint_is_parsed_once_and_a_refused_one_every_time() -> None:
    allowlist = PushAllowlist(["push.example.com"])
    endpoint = "https://push.example.com/send/abc"
    first = allowlist.parse(endpoint)
    assert allowlist.parse(endpoint) is first  # remembered
    assert str(first) == endpoint
    for _ in range(2):  # a refusal is not remembered as an answer: it raises each time
        with pytest.raises(EndpointNotAllowed):
            allowlist.parse("https://evil.example.net/send/abc")
    assert not PushAllowlist(["other.example.com"]).allows(endpoint)  # each list answers for itself
