"""The bus authenticated and encrypted (#21 finding 5), against a real nats-server running the
deploy/ accounts (deploy/nats/accounts.conf: one user per service, its subjects only) over TLS
that verifies clients: the four services, each with its own user, TLS to NATS and mTLS between
them on gRPC, carry a feedback to the phone; wrong credentials and subjects outside a user's
permissions are refused; the permissions name every subject each service's code uses."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from tests.conftest import DatabaseFactory
from tests.support.certs import make_certs
from voc_actions import __main__ as actions_main
from voc_actions.models import outbox_table as actions_outbox
from voc_actions.settings import Settings as ActionsSettings
from voc_cli import demo
from voc_cli.nats import NatsServer
from voc_cli.push_emulator import PushEmulator
from voc_cli.supervisor import free_port
from voc_feedback import __main__ as feedback_main
from voc_feedback.models import outbox_table as feedback_outbox
from voc_feedback.settings import Settings as FeedbackSettings
from voc_notify import __main__ as notify_main
from voc_notify.models import outbox_table as notify_outbox
from voc_notify.settings import Settings as NotifySettings
from voc_platform import identity
from voc_platform.bus import NatsSecurity
from voc_platform.runtime import ServiceRuntime
from voc_profile import __main__ as profile_main
from voc_profile.models import outbox_table as profile_outbox
from voc_profile.settings import Settings as ProfileSettings

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = ROOT / "deploy" / "nats" / "accounts.conf"
SERVICES = ("feedback", "profile", "actions", "notify")
ADMIN_TOKEN = "secure-bus-admin-token"


@dataclass
class SecureNats:
    server: NatsServer
    certs: Path
    passwords: dict[str, str]

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.server.port}"

    def security(self, user: str, *, password: str | None = None, cert: bool = True) -> NatsSecurity:
        """How `user` connects: its password, the CA, and (the server verifies clients) a
        client certificate (any of the services' will do)."""
        tls_dir = self.certs / ("feedback" if user == "admin" else user)
        return NatsSecurity(
            user=user,
            password=password if password is not None else self.passwords[user],
            tls_ca=tls_dir / "ca.crt",
            tls_cert=tls_dir / "tls.crt" if cert else None,
            tls_key=tls_dir / "tls.key" if cert else None,
        )

    async def connect(self, user: str, **kwargs: Any) -> nats.NATS:
        security = self.security(user, **{k: kwargs.pop(k) for k in ("password", "cert") if k in kwargs})
        return await nats.connect(
            servers=[self.url],
            inbox_prefix=f"_INBOX.{user}",  # as the services' Bus does: replies only there
            allow_reconnect=False,
            connect_timeout=3,
            **security.connect_options([self.url]),
            **kwargs,
        )


@pytest.fixture(scope="module")
def secure_nats(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("secure-nats")
    certs = root / "certs"
    make_certs().make_all(certs)
    shutil.copy(ACCOUNTS, root / "accounts.conf")
    (root / "nats.conf").write_text(
        "tls {\n"
        f'  cert_file: "{certs / "nats" / "tls.crt"}"\n'
        f'  key_file: "{certs / "nats" / "tls.key"}"\n'
        f'  ca_file: "{certs / "nats" / "ca.crt"}"\n'
        "  verify: true\n"
        "}\n"
        'include "accounts.conf"\n'
    )
    # As OPERATIONS.md says to make them: nats-server reads a $VARIABLE as a config value, so a
    # password is a letter then hex digits (a leading digit or '-', a '#' or ',' would not parse).
    passwords = {user: "n" + secrets.token_hex(24) for user in (*SERVICES, "admin", "system")}
    server = NatsServer(
        store_dir=root / "js",
        port=0,
        name="voc-secure",
        config=root / "nats.conf",
        env={f"VOC_NATS_{user.upper()}_PASSWORD": pw for user, pw in passwords.items()},
    )
    server.start()
    try:
        yield SecureNats(server, certs, passwords)
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def secure_system(
    secure_nats: SecureNats, databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("secure-system")
    ports = {name: (free_port(), free_port()) for name in SERVICES}
    certs = secure_nats.certs
    specs = [
        ("profile", ProfileSettings, profile_main, profile_outbox),
        ("actions", ActionsSettings, actions_main, actions_outbox),
        ("feedback", FeedbackSettings, feedback_main, feedback_outbox),
        ("notify", NotifySettings, notify_main, notify_outbox),
    ]
    runtimes: list[ServiceRuntime] = []
    try:
        for name, settings_cls, module, outbox in specs:
            extra = {"push_allowed_hosts": "127.0.0.1:*"} if name == "notify" else {}
            settings = settings_cls(
                data_dir=data_dir,
                http_port=ports[name][0],
                grpc_port=ports[name][1],
                database_url=databases.url(f"secure_{name}"),
                admin_token=ADMIN_TOKEN,
                internal_token="secure-bus-internal-token",
                # Its own NATS user, over TLS with a client certificate.
                nats_url=secure_nats.url,
                nats_user=name,
                nats_password=secure_nats.passwords[name],
                nats_tls_ca=certs / name / "ca.crt",
                nats_tls_cert=certs / name / "tls.crt",
                nats_tls_key=certs / name / "tls.key",
                # gRPC between the services: TLS, and a client certificate required (mTLS).
                grpc_tls_cert=certs / name / "tls.crt",
                grpc_tls_key=certs / name / "tls.key",
                grpc_tls_ca=certs / name / "ca.crt",
                grpc_tls_client_auth="require",
                **{f"{n}_grpc_target": f"localhost:{g}" for n, (_, g) in ports.items()},
                **extra,
            )
            runtime = ServiceRuntime(settings, migrations_dir=module.MIGRATIONS, outbox=outbox)
            await runtime.start(module.build(runtime))
            runtimes.append(runtime)
        for runtime in runtimes:
            await runtime.wait_bus_ready(timeout=20)
        urls = {n: f"http://127.0.0.1:{ports[n][0]}" for n in SERVICES}
        creds = await asyncio.to_thread(
            demo.seed, urls=urls, admin_token=ADMIN_TOKEN, credentials_path=data_dir / "creds.json"
        )
        yield {"urls": urls, "creds": creds}
    finally:
        for runtime in reversed(runtimes):
            with contextlib.suppress(Exception):
                await runtime.stop()


async def test_the_happy_path_runs_authenticated_over_tls(
    secure_system: dict[str, Any], push_emulator: PushEmulator
) -> None:
    urls, creds = secure_system["urls"], secure_system["creds"]
    lead = next(s for s in creds["staff"] if s["email"] == "minji@gangnam.demo")
    store = next(s for s in creds["stores"] if s["id"] == "store-gangnam")
    async with httpx.AsyncClient(timeout=10) as client:
        login = await client.post(
            f"{urls['notify']}/v1/auth/login", json={"email": lead["email"], "password": lead["password"]}
        )
        staff = {"Authorization": f"Bearer {login.json()['access_token']}"}
        subscription = push_emulator.new_subscription(label="secure-bus")
        assert (
            await client.post(f"{urls['notify']}/v1/devices", json=subscription, headers=staff)
        ).status_code == 201
        r = await client.post(
            f"{urls['feedback']}/v1/feedback",
            headers={"Authorization": f"Bearer {store['api_key']}"},
            json={
                "store_id": "store-gangnam",
                "channel": "app",
                "text": "The soup was cold and the staff ignored us.",
                "ratings": {"csat": 1},
                "customer": {"loyalty_id": "L-1004"},
            },
        )
        assert r.status_code == 202, r.text
        feedback_id = r.json()["id"]
        push = await push_emulator.wait_for(
            lambda p: p.json and p.json.get("feedback_id") == feedback_id, timeout=20
        )
        # notify asked profile and actions over mTLS gRPC: nothing degraded.
        detail = (
            await client.get(f"{urls['notify']}/v1/alerts/{push.json['alert_id']}", headers=staff)
        ).json()
        assert detail["degraded"] == [] and detail["customer"]["known"] is True
        assert detail["plan"]["playbook_id"]
        # feedback consumed notify's voc.alert.created, profile linked the customer.
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

        async def case_moved() -> bool:
            item = (await client.get(f"{urls['feedback']}/v1/feedback/{feedback_id}", headers=admin)).json()
            return bool(item["status"] == "alerted" and item["customer_id"])

        await wait_async(case_moved)
        # A correction in the staff app reaches profile's copy (profile-corrections consumes
        # voc.feedback.corrected under its own user, #18 with #17).
        customer_id = (
            await client.get(f"{urls['feedback']}/v1/feedback/{feedback_id}", headers=admin)
        ).json()["customer_id"]
        corrected = await client.post(
            f"{urls['notify']}/v1/alerts/{push.json['alert_id']}/corrections",
            json={"category": "cleanliness"},
            headers=staff,
        )
        assert corrected.status_code == 200, corrected.text

        async def profile_corrected() -> bool:
            url = f"{urls['profile']}/v1/customers/{customer_id}/context"
            contacts = (await client.get(url, headers=admin)).json()["recent_contacts"]
            return any(c["feedback_id"] == feedback_id and c["category"] == "cleanliness" for c in contacts)

        await wait_async(profile_corrected)


async def wait_async(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("user", "kwargs"),
    [
        ("notify", {"password": "not-the-password"}),
        ("nobody", {"password": secrets.token_urlsafe(32)}),
        ("notify", {"cert": False}),  # the server verifies clients: no certificate, no TLS
    ],
)
async def test_wrong_credentials_are_refused(
    secure_nats: SecureNats, user: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(Exception) as refused:
        await secure_nats.connect(user, **kwargs)
    assert refused.type is not AssertionError


async def test_plaintext_is_refused(secure_nats: SecureNats) -> None:
    url = f"nats://127.0.0.1:{secure_nats.server.port}"
    with pytest.raises(Exception):  # noqa: B017 - the server requires TLS
        await nats.connect(
            servers=[url], user="notify", password=secure_nats.passwords["notify"], allow_reconnect=False
        )


async def test_subjects_outside_a_users_permissions_are_refused(secure_nats: SecureNats) -> None:
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    # notify may not forge an erasure (only profile publishes it) ...
    notify = await secure_nats.connect("notify", error_cb=on_error)
    # ... and actions may not read the PII of voc.feedback.received.
    actions = await secure_nats.connect("actions", error_cb=on_error)
    admin = await secure_nats.connect("admin")
    try:
        received: list[Any] = []

        async def keep(msg: Any) -> None:
            received.append(msg)

        for subject in ("voc.feedback.received", "voc.>", "_INBOX.notify.>"):
            await actions.subscribe(subject, cb=keep)
        await actions.flush()
        forged = f"forged-{secrets.token_hex(4)}"
        await notify.publish("voc.profile.customer_erased", forged.encode(), headers={"Nats-Msg-Id": forged})
        await notify.publish("voc.feedback.received", forged.encode())
        await notify.flush()
        js = admin.jetstream()
        with contextlib.suppress(Exception):  # the streams exist once a service started
            await js.add_stream(name="VOC", subjects=["voc.>"])
        await asyncio.sleep(0.5)
        messages = " ".join(str(e) for e in errors).lower()
        assert 'permissions violation for publish to "voc.profile.customer_erased"' in messages
        assert 'permissions violation for subscription to "voc.feedback.received"' in messages
        assert 'permissions violation for subscription to "_inbox.notify.>"' in messages
        assert received == []  # nothing reached a subscription the user may not have
        with pytest.raises(NotFoundError):
            await js.get_last_msg("VOC", "voc.profile.customer_erased")
        # Its own subjects still work for the same connection.
        assert (await notify.jetstream().publish("voc.alert.delivered", b"own subject")).seq > 0
    finally:
        for nc in (notify, actions, admin):
            await nc.close()


def test_every_subject_a_service_uses_is_in_its_permissions() -> None:
    """Each literal subject in a service's code (events it publishes or consumes) is in its own
    user's block of deploy/nats/accounts.conf: as a publish, or as the dead letter of a consumed
    one. A new event without a permission fails here before it fails in production."""
    text = ACCOUNTS.read_text()
    blocks = dict(re.findall(r"user: (\w+)\n(.*?)\n      }\n", text, flags=re.S))
    assert set(SERVICES) <= set(blocks)
    subject = re.compile(r"\"((?:voc\.(?:feedback|profile|actions|alert)\.[a-z_]+)|live\.voc\.alerts)\"")
    missing = []
    for service in SERVICES:
        used = set()
        for path in (ROOT / "services" / service / "src").rglob("*.py"):
            used |= set(subject.findall(path.read_text()))
        assert used, service
        for name in sorted(used):
            if f'"{name}"' not in blocks[service] and f'"dlq.{name}"' not in blocks[service]:
                missing.append(f"{service}: {name}")
    assert missing == []


def test_every_service_may_consume_the_staff_revocations_and_notify_publish_them() -> None:
    """`voc.staff.sessions_revoked` (voc_platform.identity, so in no service's own code): notify
    publishes it, every other service's durable consumer `<service>-revocations` reads it."""
    text = ACCOUNTS.read_text()
    blocks = dict(re.findall(r"user: (\w+)\n(.*?)\n      }\n", text, flags=re.S))
    assert f'"{identity.SUBJECT_REVOKED}"' in blocks["notify"]
    for service in ("feedback", "profile", "actions"):
        durable = f"{service}-revocations"
        for needed in (
            f"$JS.API.CONSUMER.DURABLE.CREATE.VOC.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.VOC.{durable}",
            f"$JS.ACK.VOC.{durable}.>",
            f"dlq.{identity.SUBJECT_REVOKED}",
        ):
            assert f'"{needed}"' in blocks[service], (service, needed)


async def test_a_service_with_the_wrong_password_never_gets_on_the_bus(
    secure_nats: SecureNats, databases: DatabaseFactory, tmp_path: Path
) -> None:
    certs = secure_nats.certs
    settings = ActionsSettings(
        data_dir=tmp_path,
        http_port=free_port(),
        grpc_port=free_port(),
        database_url=databases.url("secure_wrong"),
        nats_url=secure_nats.url,
        nats_user="actions",
        nats_password="n" + secrets.token_hex(24),  # not the one nats-server has
        nats_tls_ca=certs / "actions" / "ca.crt",
        nats_tls_cert=certs / "actions" / "tls.crt",
        nats_tls_key=certs / "actions" / "tls.key",
    )
    runtime = ServiceRuntime(settings, migrations_dir=actions_main.MIGRATIONS, outbox=actions_outbox)
    await runtime.start(actions_main.build(runtime))
    try:
        with pytest.raises(TimeoutError):
            await runtime.wait_bus_ready(timeout=2)
        assert not runtime.bus.connected
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"http://127.0.0.1:{runtime.http_port}/readyz")
        assert ready.status_code == 503
    finally:
        await runtime.stop()
