"""The supervisor's rules (#22 §2): the caller's settings reach the services, it owns only what
it allocated, and a service that keeps dying at once is given up on (bounded restarts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from voc_cli import demo, settings_report, supervisor, up
from voc_cli.supervisor import (
    LISTEN_FLOOR,
    MAX_QUICK_EXITS,
    PORT_RANGE_VARIABLE,
    PUBLIC_PUSH_HOSTS,
    ServiceFailed,
    System,
    SystemConfig,
    ephemeral_floor,
    free_port,
)
from voc_profile.identity import normalize_phone


def test_the_callers_settings_pass_through_and_ports_stay_the_supervisors(tmp_path: Path) -> None:
    caller = {
        "PATH": "/usr/bin",
        "VOC_FEEDBACK_RATE_LIMIT_BURST": "2",
        "VOC_ADMIN_TOKEN": "adm_the_operators_own_token_0123456789",
        "VOC_LOG_FORMAT": "json",
        "VOC_FEEDBACK_HTTP_PORT": "1",  # the supervisor allocated the ports: its own win
        "VOC_DATA_DIR": "/somewhere/else",
    }
    system = System(SystemConfig.free_ports(tmp_path, nats_url="nats://127.0.0.1:4999"), environ=caller)
    env = system.env_for("feedback")
    assert env["PATH"] == "/usr/bin"
    assert env["VOC_FEEDBACK_RATE_LIMIT_BURST"] == "2" and env["VOC_LOG_FORMAT"] == "json"
    assert env["VOC_ADMIN_TOKEN"] == caller["VOC_ADMIN_TOKEN"] == system.admin_token  # seeds with it too
    assert env["VOC_FEEDBACK_HTTP_PORT"] == str(system.config.ports["feedback"][0])
    assert env["VOC_DATA_DIR"] == str(tmp_path) and env["VOC_NATS_URL"] == "nats://127.0.0.1:4999"
    # Defaults fill only what the caller left unset.
    assert env["VOC_ENV"] == "development" and env["VOC_PUSH_ALLOWED_HOSTS"] == PUBLIC_PUSH_HOSTS
    assert env["VOC_INTERNAL_TOKEN"] == system.secrets["internal_token"]
    # What the tests and the bench set explicitly is theirs.
    explicit = SystemConfig.free_ports(
        tmp_path, log_format="text", extra_env={"VOC_FEEDBACK_RATE_LIMIT_BURST": "9"}
    )
    explicit.nats_url = "nats://127.0.0.1:4999"
    env = System(explicit, environ=caller).env_for("feedback")
    assert env["VOC_LOG_FORMAT"] == "text" and env["VOC_FEEDBACK_RATE_LIMIT_BURST"] == "9"


def test_the_start_report_masks_secrets_and_flags_unknown_variables() -> None:
    lines = settings_report.report(
        {
            "VOC_FEEDBACK_RATE_LIMIT_BURST": "2",
            "VOC_FEEDBACK_RATE_LIMIT_PER_SECOND": "20",  # the default: not a change
            "VOC_JWT_SECRET": "s3cr3t-value-never-printed",
            "VOC_NOTIFY_DATABASE_URL": "postgresql://voc:hunter2@db:5432/notify",
            "VOC_SMTP_URL": "smtp://pager:mail-pass-9@mail.example:587",
            "VOC_FEEDBACK_RATE_LIMT_BURST": "2",
            "VOC_DATA_DIR": "/var/lib/voc",
            "VOC_TOKEN_TTL_SECONDS": "120",
            "HOME": "/root",
        }
    )
    text = "\n".join(lines)
    assert "    VOC_FEEDBACK_RATE_LIMIT_BURST=2   (feedback)" in lines
    assert any(line.startswith("    VOC_TOKEN_TTL_SECONDS=120   ") for line in lines), (
        lines
    )  # a lifetime, no secret
    assert "    VOC_JWT_SECRET=****   (all services)" in lines
    assert "    VOC_NOTIFY_DATABASE_URL=postgresql://voc:****@db:5432/notify   (notify)" in lines
    assert "    VOC_SMTP_URL=smtp://pager:****@mail.example:587   (notify)" in lines
    assert "VOC_FEEDBACK_RATE_LIMIT_PER_SECOND" not in text and "hunter2" not in text and "s3cr3t" not in text
    assert "mail-pass-9" not in text
    assert lines[-1] == "[voc] warning: VOC_FEEDBACK_RATE_LIMT_BURST is read by no service (a typo?); ignored"
    assert settings_report.report({"HOME": "/root"})[0].startswith("[voc] settings: the defaults")


def test_the_start_report_compares_with_what_voc_up_would_set(tmp_path: Path) -> None:
    """The settings review: `voc up` has defaults of its own (text logs, the console's origin,
    the data dir's secrets), so JSON logs, an emptied console origin and the built-in admin
    token change a `make run` system and are listed; `voc up`'s own values are not."""
    system = System(SystemConfig.free_ports(tmp_path, nats_url="nats://127.0.0.1:4999"), environ={})
    own = system.defaults()
    lines = settings_report.report(
        {
            "VOC_LOG_FORMAT": "json",
            "VOC_CONSOLE_ORIGINS": "",
            "VOC_ADMIN_TOKEN": "dev-admin-token",
            "VOC_NOTIFY_PUBLIC_URL": own["VOC_NOTIFY_PUBLIC_URL"],
        },
        defaults=own,
    )
    assert "    VOC_LOG_FORMAT=json   (all services)" in lines, lines
    assert any(line.startswith("    VOC_CONSOLE_ORIGINS=(empty)   ") for line in lines), lines
    assert any(line.startswith("    VOC_ADMIN_TOKEN=****   ") for line in lines), lines
    assert not any("VOC_NOTIFY_PUBLIC_URL" in line for line in lines), lines
    assert settings_report.report({"VOC_LOG_FORMAT": "text"}, defaults=own)[0].startswith(
        "[voc] settings: the defaults"
    )


def test_the_start_says_once_how_follow_up_links_reach_customers() -> None:
    """#19: no SMTP or gateway → the line the case timelines echo; an SMTP URL is shown
    without its password."""
    none = settings_report.follow_up_line({"HOME": "/root"})
    assert none.startswith("[voc] follow-up not sent: no channel configured")
    smtp = "smtp://voc:hunter2@mail.example.com:587?starttls=1"
    line = settings_report.follow_up_line({"VOC_SMTP_URL": smtp, "VOC_MAIL_FROM": "voc@example.com"})
    assert (
        line
        == "[voc] follow-up links go to customers by e-mail (smtp://voc:****@mail.example.com:587?starttls=1)"
    )
    reported = settings_report.report({"VOC_SMTP_URL": smtp, "VOC_MAIL_FROM": "voc@example.com"})
    assert "hunter2" not in "\n".join(reported) and all("warning" not in line for line in reported)
    environ = {
        "VOC_SMTP_URL": smtp,
        "VOC_MAIL_FROM": "voc@example.com",
        "VOC_DELIVERY_REPORT_TOKEN": "t0ken-x",
    }
    assert settings_report.follow_up_line(environ).endswith(
        "; delivery reports (bounces, the gateway's) taken at notify's /v1/follow-ups/delivery-reports"
    )
    reported = "\n".join(settings_report.report(environ))
    assert "VOC_DELIVERY_REPORT_TOKEN=****" in reported and "t0ken-x" not in reported


@pytest.mark.timeout(400)  # five starts of a service: on a loaded 2-core runner ~20 s each
def test_a_service_that_keeps_exiting_at_once_is_given_up_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a settings refusal but a crash at start (its database cannot be opened): restarted
    with a growing back-off, then given up on with its last line, not restarted forever."""
    config = SystemConfig.free_ports(
        tmp_path,
        restart=True,
        database_urls={"actions": f"sqlite:///{tmp_path}/not-a-dir/actions.db"},
    )
    (tmp_path / "not-a-dir").write_text("a file where the database's directory should be")
    system = System(config, environ={k: v for k, v in os.environ.items() if not k.startswith("VOC_")})
    try:
        # Given up on (ServiceFailed) rather than waited for until the start's timeout, which is
        # only a fail-safe here: five starts take what the machine's load makes them take.
        with pytest.raises(ServiceFailed, match=f"actions exited {MAX_QUICK_EXITS} times in a row"):
            system.start(timeout=300)
    finally:
        system.stop()
    # MAX_QUICK_EXITS exits in a row before it was ever ready: each counts, however slow the
    # start on a busy machine (> 10 s of imports is still a crash at start).
    restarts = system.services["actions"].restarts
    assert restarts == MAX_QUICK_EXITS - 1
    err = capsys.readouterr().err
    assert err.count("[voc] actions exited (code 1); restarting in") == restarts
    assert "restarting in 4.0s" in err and "not restarting actions" in err


@pytest.mark.parametrize(
    ("variable", "value"), [("VOC_NATS_PORT", "abc"), ("VOC_FEEDBACK_HTTP_PORT", "70000")]
)
def test_voc_up_refuses_an_invalid_port_of_its_own_in_one_line(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update({"VOC_DATA_DIR": str(tmp_path), variable: value})
    done = subprocess.run(
        [sys.executable, "-m", "voc_cli", "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"voc up: refusing to start: {variable}: a port number from 1 to 65535 (got {value!r})"
    ]
    assert not (tmp_path / "nats").exists()  # nothing was started


def test_free_ports_are_distinct_listenable_and_outside_the_ephemeral_range() -> None:
    """An outgoing connection takes its local port from the ephemeral range: a port handed out
    from there can be taken before the service binds it (a suite run lost a system start so).
    Where the range leaves no room below it, the kernel's ports are the fallback: still distinct."""
    low = ephemeral_floor()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    if low > LISTEN_FLOOR + 1_000:
        assert all(LISTEN_FLOOR <= port < low for port in ports), ports
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
            sock.listen()


def test_free_ports_stay_in_the_given_range(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parallel test workers each get a slice (tests/conftest.py): no two hand out one port."""
    monkeypatch.setenv(PORT_RANGE_VARIABLE, "23000-23049")
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    assert all(23000 <= port <= 23049 for port in ports), ports


@pytest.mark.parametrize("given", ["23000", "23000-22000", "x-y", "80-90", "60000-70000"])
def test_a_wrong_port_range_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv(PORT_RANGE_VARIABLE, given)
    with pytest.raises(ValueError, match=PORT_RANGE_VARIABLE):
        free_port()


def test_without_room_below_the_ephemeral_range_the_kernels_ports_are_used_still_distinct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PORT_RANGE_VARIABLE, raising=False)
    monkeypatch.setattr(supervisor, "ephemeral_floor", lambda: 1024)  # e.g. a "1024 65535" range
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    assert all(port >= 1024 for port in ports)


@pytest.mark.parametrize(
    ("host", "reached_at"),
    [("0.0.0.0", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("::1", "[::1]"), ("", "127.0.0.1")],
)
def test_the_services_are_reached_where_they_listen(tmp_path: Path, host: str, reached_at: str) -> None:
    """With VOC_HOST=0.0.0.0 customers' follow-up links read http://0.0.0.0:…; with 127.0.0.2
    `voc up` waited for the services on 127.0.0.1 and gave up after 60 s (settings review)."""
    system = System(
        SystemConfig.free_ports(tmp_path, nats_url="nats://127.0.0.1:4999"), environ={"VOC_HOST": host}
    )
    http, grpc = system.config.ports["feedback"]
    assert system.url("feedback") == f"http://{reached_at}:{http}"
    env = system.env_for("notify")
    assert env["VOC_FEEDBACK_GRPC_TARGET"] == f"{reached_at}:{grpc}"
    assert env["VOC_FEEDBACK_PUBLIC_URL"] == f"http://{reached_at}:{http}"  # the links customers get


def test_the_demo_customers_phones_read_in_any_region() -> None:
    """VOC_PROFILE_DEFAULT_REGION=US made the demo's Korean national numbers invalid and
    `make run` died seeding: the demo gives them in international form."""
    for region in ("KR", "US", "GB", "JP"):
        read = [normalize_phone(c["phone"], region=region) for c in demo.CUSTOMERS if "phone" in c]
        assert read == ["+821012345678", "+821022223333", "+821098765432", "+821044556677"], region


def test_the_start_report_says_what_voc_up_ignores_and_knows_the_tools_variables() -> None:
    lines = settings_report.report(
        {
            "VOC_PROFILE_GRPC_TARGET": "10.0.0.9:9020",
            "VOC_FREE_PORT_RANGE": "20000-30000",
            "VOC_TEST_ALL": "1",
        }
    )
    assert (
        "    VOC_PROFILE_GRPC_TARGET=10.0.0.9:9020   (ignored: voc up points each service at its own)"
        in lines
    )
    assert not [line for line in lines if "typo" in line], lines


def test_services_that_never_get_ready_say_why_on_the_terminal(tmp_path: Path) -> None:
    """An unreachable VOC_NATS_URL or a bad NKey seed ended in "not ready: [...]" after the wait,
    the cause only in each service's log: `voc up` now prints what each said last."""
    system = System(SystemConfig.free_ports(tmp_path, nats_url="nats://127.0.0.1:4999"), environ={})
    (tmp_path / "logs").mkdir()
    system.log_path("profile").write_text("starting\nnats: no servers available for connection\n\n")
    system.services["profile"] = supervisor.ServiceProcess("profile", {}, None)  # never started
    with pytest.raises(supervisor.NotReady) as waited:
        system.wait_ready(timeout=0, names=("profile",))
    assert waited.value.names == ("profile",) and str(waited.value).startswith("not ready: ['profile']")
    assert up.last_words(system, waited.value) == [
        "[voc]   profile said last: nats: no servers available for connection"
    ]
