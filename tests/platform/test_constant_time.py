"""Secrets are compared in constant time everywhere (#21 finding 10): one helper,
`voc_platform.constant_time.same_secret`, and no `==` / `!=` on a token, secret, signature or
password anywhere in the services, the libraries or the tools."""

from __future__ import annotations

import ast
import hmac
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.security import HTTPAuthorizationCredentials

from voc_feedback.deps import Reader
from voc_feedback.models import revocations_table
from voc_feedback.settings import Settings as FeedbackSettings
from voc_platform.identity import Identity, Permission, Revocations

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "libs", ROOT / "services", ROOT / "tools"]
#: Names that hold a secret when a comparison mentions them.
SECRET_NAME = re.compile(r"(token|secret|signature|password|passwd|api_key|credential)s?$", re.IGNORECASE)
#: Where such a name is not a secret: the classifier's word tokens.
NOT_SECRETS = ("services/feedback/src/voc_feedback/classification/",)


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    return None


def plain_comparisons_of_secrets(source: str, filename: str) -> list[str]:
    """`==` / `!=` whose operands name a secret (`token == settings.admin_token`)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Compare):
            continue
        lefts = [node.left, *node.comparators[:-1]]
        for op, left, right in zip(node.ops, lefts, node.comparators, strict=True):
            if not isinstance(op, ast.Eq | ast.NotEq):
                continue
            names = [n for n in (_name(left), _name(right)) if n is not None]
            literal = any(isinstance(side, ast.Constant) for side in (left, right))
            if not literal and any(SECRET_NAME.search(n) for n in names):
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_secret_is_compared_with_equality() -> None:
    found: list[str] = []
    for root in SOURCES:
        for path in root.rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if "/tests/" in relative or relative.startswith(NOT_SECRETS) or "/.venv/" in relative:
                continue
            found += plain_comparisons_of_secrets(path.read_text(), relative)
    assert found == [], "compare secrets with voc_platform.constant_time.same_secret:\n" + "\n".join(found)


def test_the_scan_finds_what_it_must() -> None:
    source = "def f(token, settings):\n    if token == settings.admin_token:\n        return 1\n"
    assert plain_comparisons_of_secrets(source, "x.py") == ["x.py:2: token == settings.admin_token"]
    assert plain_comparisons_of_secrets("ok = role == 'admin'\nn = token == ''\n", "x.py") == []


async def test_feedback_reader_compares_the_admin_token_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    settings = FeedbackSettings(VOC_ENV="test", admin_token="reader-admin-token-0123456789")
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=settings.admin_token)
    # The admin token is recognised before any revocation list or database is read.
    revocations = Revocations(None, revocations_table)  # type: ignore[arg-type]
    identity = Identity(secret=settings.jwt_secret, admin_token=settings.admin_token, revocations=revocations)
    reader = Reader(credentials, session=None, settings=settings, limiter=None, identity=identity)  # type: ignore[arg-type]
    assert (await reader.scope(Permission.FEEDBACK_READ)).scope is None  # the admin token reads every store
    assert calls and all(isinstance(a, bytes) for a, _ in calls)
    assert (settings.admin_token.encode(), settings.admin_token.encode()) in calls


def test_same_secret() -> None:
    from voc_platform.constant_time import same_secret

    assert same_secret("abc", "abc") and same_secret(b"abc", "abc")
    assert not same_secret("abd", "abc") and not same_secret("ab", "abc")
    assert not same_secret("", "")  # an unset secret matches nothing
    assert same_secret("토큰", "토큰")
