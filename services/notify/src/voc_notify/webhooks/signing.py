"""Endpoint secrets: `whsec_` + base64 of 32 random bytes, shown once; kept encrypted (AES-GCM
with a key derived by HKDF from VOC_NOTIFY_WEBHOOK_KEY, or else from VOC_JWT_SECRET, which
production refuses at a development value); the Standard Webhooks signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from voc_notify.settings import Settings

PREFIX: Final = "whsec_"
_VERSION: Final = "v1."
_INFO: Final = b"frontline-voc notify webhook secrets v1"
#: How long a replaced secret still signs after a rotation by default: a day for the receiver to
#: switch; at most a week. A secret that leaked is rotated with 0.
KEEP_PREVIOUS_SECONDS: Final = 86400
KEEP_PREVIOUS_MAX_SECONDS: Final = 7 * 86400


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(32)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key: the base64 after `whsec_`, decoded (as the Standard Webhooks libraries do)."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`."""
    mac = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


class SecretBox:
    """Encrypts endpoint secrets at rest; the database alone cannot sign a webhook."""

    def __init__(self, key_material: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key_material.encode())
        self._aead = AESGCM(key)

    @classmethod
    def of(cls, settings: Settings) -> SecretBox:
        return cls(settings.webhook_key or settings.jwt_secret)

    def seal(self, secret: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), _INFO)
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open_signing(
        self, stored: str, previous: str | None, previous_until: float | None, *, now: float
    ) -> tuple[str, str | None]:
        """(the secret, the rotated one while it still signs, else None); raises `ValueError` as
        `open` does for the secret. A rotated one sealed with a key since changed is left out: a
        rotation is how an endpoint recovers from a key change."""
        secret = self.open(stored)
        if previous is None or previous_until is None or previous_until <= now:
            return secret, None
        try:
            return secret, self.open(previous)
        except ValueError:
            return secret, None

    def open(self, stored: str) -> str:
        """The secret; raises `ValueError` when it was sealed with another key."""
        if not stored.startswith(_VERSION):
            raise ValueError("unknown secret format")
        raw = base64.urlsafe_b64decode(stored[len(_VERSION) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], _INFO).decode()
        except Exception as exc:  # cryptography's InvalidTag
            raise ValueError(
                "the secret was sealed with another key (VOC_NOTIFY_WEBHOOK_KEY changed?)"
            ) from exc
