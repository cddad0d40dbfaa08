"""Production is fail-closed (#21 finding 4): every secret set, none a built-in development value,
a placeholder from deploy/ or the docs, short or too regular; the refusal is one line naming the
variable; the image runs in production; development (`make run`) keeps its generated secrets."""

from __future__ import annotations

import base64
import os
import random
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.certs import make_certs
from voc_cli.supervisor import load_or_create_secrets
from voc_feedback.settings import Settings as FeedbackSettings
from voc_notify.settings import Settings as NotifySettings
from voc_platform import settings as platform_settings
from voc_platform.settings import DEV_ADMIN_TOKEN, DEV_INTERNAL_TOKEN, DEV_JWT_SECRET
from voc_profile.settings import Settings as ProfileSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def random_secret() -> str:
    return secrets.token_urlsafe(32)


def production(**overrides: str) -> dict[str, str]:
    values = {
        "environment": "production",
        "admin_token": random_secret(),
        "internal_token": random_secret(),
        "follow_up_secret": random_secret(),
        "jwt_secret": random_secret(),
    }
    values.update(overrides)
    return values


def example_secret_values() -> list[str]:
    """The placeholders shipped in deploy/ (the example Secret), and the ones .env.example and the
    docs carried: none of them may ever start a production process."""
    secret = yaml.safe_load((DEPLOY / "k8s" / "base" / "secret.example.yaml").read_text())
    shipped = [v for k, v in secret["stringData"].items() if not k.endswith(("-url", "-key"))]
    return [
        *shipped,
        "change-me-to-32-random-characters-or-more",
        "change-me-to-48-random-characters-or-more-please",
        "secret-placeholder-" + "x" * 40,
        DEV_ADMIN_TOKEN,
        DEV_INTERNAL_TOKEN,
        DEV_JWT_SECRET,
    ]


# A random part gets a fixed test id: parallel workers must collect the same tests.
@pytest.mark.parametrize(
    "value",
    [
        *example_secret_values(),
        pytest.param(DEV_ADMIN_TOKEN + "-" + random_secret(), id="dev-admin-token-random"),
    ],
)
@pytest.mark.parametrize(
    ("field", "variable"),
    [
        ("admin_token", "VOC_ADMIN_TOKEN"),
        ("internal_token", "VOC_INTERNAL_TOKEN"),
        ("follow_up_secret", "VOC_FEEDBACK_FOLLOW_UP_SECRET"),
    ],
)
def test_production_refuses_every_built_in_or_example_secret(field: str, variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        FeedbackSettings(**production(**{field: value}))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is not set"),
        ("Zq8" + "k" * 10, "is shorter than 32"),
        pytest.param(secrets.token_urlsafe(16), "is shorter than 32", id="random-16-bytes"),
        ("x" * 40, "has too little entropy"),
        ("ab" * 24, "has too little entropy"),
        ("0123456" * 6, "has too little entropy"),
        ("abcdefghijklmnopqrstuvwxyz012345", "holds a run of consecutive characters"),
        pytest.param(
            "Qz9zyxwvutsrq" + secrets.token_hex(11),
            "holds a run of consecutive characters",
            id="descending-run",
        ),
    ],
)
def test_production_refuses_short_or_regular_secrets(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"VOC_JWT_SECRET {reason}"):
        NotifySettings(**production(jwt_secret=value))


def test_production_refuses_one_value_in_two_roles() -> None:
    shared = random_secret()
    with pytest.raises(ValueError) as refused:
        NotifySettings(**production(admin_token=shared, internal_token=shared, jwt_secret=shared))
    message = str(refused.value)
    assert "VOC_INTERNAL_TOKEN is the same value as VOC_ADMIN_TOKEN" in message
    assert "VOC_JWT_SECRET is the same value as VOC_ADMIN_TOKEN" in message
    assert shared not in message  # the value itself is never echoed


def test_random_secrets_pass_whatever_their_alphabet() -> None:
    # Drawn from a seeded generator: a run of 7 in sequence comes once in about 600,000 random
    # hex secrets of 64 characters, and the test must not fail once in a few hundred runs.
    rng = random.Random(20261206)
    for _ in range(2000):
        raw = rng.randbytes(32)
        for value in (base64.urlsafe_b64encode(raw).decode().rstrip("="), raw[:16].hex(), raw.hex()):
            assert platform_settings.secret_problem(value) is None, value
    assert FeedbackSettings(**production()).environment == "production"
    assert NotifySettings(**production()).environment == "production"


def test_production_requires_the_follow_up_and_the_jwt_secret() -> None:
    values = production()
    del values["follow_up_secret"], values["jwt_secret"]
    with pytest.raises(ValueError, match="VOC_FEEDBACK_FOLLOW_UP_SECRET is not set"):
        FeedbackSettings(**values)
    with pytest.raises(ValueError, match="VOC_JWT_SECRET is a built-in development value"):
        NotifySettings(**values)
    # Development still derives the follow-up secret and signs with the development JWT secret.
    assert FeedbackSettings(environment="development").follow_up_secret
    assert NotifySettings(environment="development").jwt_secret == DEV_JWT_SECRET


def test_production_refuses_the_example_database_password() -> None:
    secret = yaml.safe_load((DEPLOY / "k8s" / "base" / "secret.example.yaml").read_text())
    with pytest.raises(ValueError, match="VOC_PROFILE_DATABASE_URL carries an example password"):
        ProfileSettings(**production(database_url=secret["stringData"]["profile-database-url"]))
    url = f"postgresql://voc_profile:{random_secret()}@db.internal:5432/voc_profile"
    assert ProfileSettings(**production(database_url=url)).database_url == url


def test_every_wrong_variable_is_named_at_once() -> None:
    with pytest.raises(ValueError) as refused:
        NotifySettings(environment="production")
    message = str(refused.value)
    assert all(v in message for v in ("VOC_ADMIN_TOKEN", "VOC_INTERNAL_TOKEN", "VOC_JWT_SECRET"))


def test_the_process_refuses_to_start_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update(
        {
            "VOC_ENV": "production",
            "VOC_DATA_DIR": str(tmp_path),
            "VOC_ADMIN_TOKEN": "replace-with-32-random-bytes-base64url",
            "VOC_INTERNAL_TOKEN": random_secret(),
            "VOC_FEEDBACK_FOLLOW_UP_SECRET": random_secret(),
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "voc_feedback"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("voc-feedback: refusing to start:")
    assert "VOC_ADMIN_TOKEN is an example placeholder" in lines[0]
    assert "replace-with-32" not in lines[0]  # the value itself is never echoed
    assert not list(tmp_path.iterdir())  # nothing was created before the refusal


def test_the_image_runs_in_production() -> None:
    """A bare container (no VOC_ENV given) is production, so it refuses the development tokens."""
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    runtime_stage = text.split("AS runtime", 1)[1]
    assert "VOC_ENV=production" in runtime_stage


def test_development_keeps_its_generated_secrets(tmp_path: Path) -> None:
    generated = load_or_create_secrets(tmp_path)
    settings = NotifySettings(
        environment="development",
        admin_token=generated["admin_token"],
        internal_token=generated["internal_token"],
        jwt_secret=generated["jwt_secret"],
    )
    assert settings.jwt_secret == generated["jwt_secret"]
    # The generated ones would pass in production too: `make run` never uses a weak secret.
    assert all(platform_settings.secret_problem(v) is None for v in generated.values())


def test_transport_settings_name_what_is_wrong(tmp_path: Path) -> None:
    """NATS credentials and TLS, gRPC TLS (#21 finding 5): a half-given pair or a missing file
    is refused naming the variable; nothing given is the plain embedded default."""
    plain = ProfileSettings()
    assert plain.grpc_tls() is None and plain.nats_security().connect_options(["nats://x:1"]) == {}
    authority = make_certs().Authority()
    cert = authority.write(tmp_path / "profile", authority.issue("profile", ["profile"])) / "ca.crt"
    cases = [
        ({"nats_user": "profile"}, "VOC_NATS_USER and VOC_NATS_PASSWORD go together"),
        ({"grpc_tls_cert": cert}, "VOC_GRPC_TLS_CERT and VOC_GRPC_TLS_KEY go together"),
        ({"grpc_tls_client_auth": "require"}, "VOC_GRPC_TLS_CLIENT_AUTH=require needs VOC_GRPC_TLS_CA"),
        ({"nats_tls_ca": tmp_path / "missing.crt"}, "VOC_NATS_TLS_CA: no readable file"),
        (
            {"nats_user": "p", "nats_password": "x", "nats_creds": cert},
            "give one of VOC_NATS_USER/VOC_NATS_PASSWORD, VOC_NATS_CREDS, VOC_NATS_NKEY_SEED",
        ),
    ]
    for values, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            ProfileSettings(**values)
    with pytest.raises(ValueError, match="VOC_NATS_PASSWORD is an example placeholder"):
        ProfileSettings(
            **production(nats_user="profile", nats_password="replace-with-a-long-random-password")
        )
    secured = ProfileSettings(
        nats_user="profile", nats_password="n" + secrets.token_hex(24), nats_tls_ca=cert
    )
    options = secured.nats_security().connect_options(["tls://nats-0:4222"])
    assert options["user"] == "profile" and "tls" not in str(options["password"])


def test_a_list_setting_is_comma_separated_and_a_bad_one_refused_in_one_line(tmp_path: Path) -> None:
    assert ProfileSettings(VOC_PROFILE_VIP_TIERS="vip, gold").vip_tiers == ("vip", "gold")
    with pytest.raises(ValueError, match="one tier or more of basic, silver, gold, vip"):
        ProfileSettings(VOC_PROFILE_VIP_TIERS='["vip", "gold"]')  # the old JSON form
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOC_")}
    env.update({"VOC_DATA_DIR": str(tmp_path), "VOC_PROFILE_VIP_TIERS": " , "})
    done = subprocess.run(
        [sys.executable, "-m", "voc_profile"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == platform_settings.CONFIG_EXIT_STATUS, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voc-profile: refusing to start: VOC_PROFILE_VIP_TIERS")


@pytest.mark.parametrize(
    ("cls", "variable", "value", "says"),
    [
        (ProfileSettings, "VOC_PROFILE_SIGNAL_REFRESH_SECONDS", "0", "greater than 0"),  # profile spun a core
        (FeedbackSettings, "VOC_GRPC_TIMEOUT_SECONDS", "-1", "greater than 0"),  # every call failed
        (NotifySettings, "VOC_TOKEN_TTL_SECONDS", "-5", "greater than 0"),  # no one could log in
        (FeedbackSettings, "VOC_FEEDBACK_FOLLOW_UP_TTL_SECONDS", "-1", "greater than 0"),
        (FeedbackSettings, "VOC_FEEDBACK_SLA_ACK_SECONDS", "-1", "greater than 0"),
        (ProfileSettings, "VOC_PROFILE_IMPORT_BATCH_SIZE", "0", "greater than or equal to 1"),
        (ProfileSettings, "VOC_PROFILE_DEFAULT_REGION", "XX", "not a region"),
        (FeedbackSettings, "VOC_LOG_LEVEL", "LOUD", "one of DEBUG, INFO"),
        (FeedbackSettings, "VOC_FEEDBACK_DATABASE_URL", "mysql://x/y", "sqlite:///path or postgresql://"),
        (FeedbackSettings, "VOC_FEEDBACK_DATABASE_URL", "garbage", "sqlite:///path or postgresql://"),
        (NotifySettings, "VOC_WEBHOOK_ALLOWED_HOSTS", "*", "bad allowlist entry '*'"),
        (NotifySettings, "VOC_WEBHOOK_ALLOWED_HOSTS", "https://hooks.example.com/voc", "no scheme or path"),
        (NotifySettings, "VOC_PUSH_ALLOWED_HOSTS", "*", "bad allowlist entry"),
        (NotifySettings, "VOC_SMTP_CA_FILE", "/nonexistent/ca.pem", "no file"),
        # Where every follow-up and push link starts (the settings review: "not a url" started).
        (FeedbackSettings, "VOC_FEEDBACK_PUBLIC_URL", "not a url", "not a base URL"),
        (FeedbackSettings, "VOC_NOTIFY_PUBLIC_URL", "ftp://voc.example.com", "not a base URL"),
        (NotifySettings, "VOC_NOTIFY_PUBLIC_URL", "https://voc.example.com/?x=1", "not a base URL"),
        (NotifySettings, "VOC_NOTIFY_PUBLIC_URL", "https://u:p@voc.example.com", "no user or password"),
    ],
)
def test_values_that_would_break_the_system_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    cls: type[platform_settings.ServiceSettings],
    variable: str,
    value: str,
    says: str,
) -> None:
    """Each was accepted and then broke the system (a spinning loop, every gRPC call or login
    failing) or crashed a service with a traceback and restarts (settings review)."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(platform_settings.ValidationError) as refused:
        cls()
    line = platform_settings.describe(refused.value, cls)
    assert line.startswith(f"{variable}: ") and says in line, line
    assert line.count(variable) == 1  # named once, not "VOC_X: VOC_X: …"


def test_values_read_loosely_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOC_LOG_LEVEL", "debug")
    monkeypatch.setenv("VOC_PROFILE_DEFAULT_REGION", "us")
    settings = ProfileSettings()
    assert (settings.log_level, settings.default_region) == ("DEBUG", "US")
    for given, level in (("warn", "WARNING"), ("FATAL", "CRITICAL"), ("NOTSET", "NOTSET")):
        monkeypatch.setenv("VOC_LOG_LEVEL", given)
        assert ProfileSettings().log_level == level


def test_a_follow_up_delay_the_link_would_not_outlive_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message of such a setting would be 'not sent: the link expired'."""
    monkeypatch.setenv("VOC_FEEDBACK_FOLLOW_UP_TTL_SECONDS", str(3 * 86400))
    monkeypatch.setenv("VOC_FEEDBACK_FOLLOW_UP_DELAY_SECONDS", str(3 * 86400))
    with pytest.raises(ValueError, match="shorter than VOC_FEEDBACK_FOLLOW_UP_TTL_SECONDS"):
        FeedbackSettings()
    monkeypatch.setenv("VOC_FEEDBACK_FOLLOW_UP_DELAY_SECONDS", str(2 * 86400))
    assert FeedbackSettings().follow_up_delay_seconds == 2 * 86400
