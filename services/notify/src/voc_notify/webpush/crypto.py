"""Web Push cryptography: VAPID keys and tokens (RFC 8292) and message encryption (RFC 8291,
aes128gcm), plus the base64url both speak."""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import logging
import os
import re
import struct
import tempfile
from pathlib import Path
from typing import Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

#: RFC 8291 s4: a push message is a single record of at most 4096 octets:
#: 86 octets of aes128gcm header (salt 16, rs 4, idlen 1, keyid 65) + 16 tag + 1 delimiter.
RECORD_SIZE: Final = 4096
MAX_PAYLOAD_BYTES: Final = RECORD_SIZE - 86 - 16 - 1  # 3993
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_\-+/]*={0,2}")


class PayloadTooLarge(ValueError):
    """The plaintext does not fit into one 4096-octet RFC 8291 record."""


# ---------------------------------------------------------------------------------------
# base64url helpers


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Decode base64url (padding optional). Standard-alphabet input is tolerated, as
    some older browsers/libraries produced it. Raises ``ValueError``."""
    if not _B64URL_RE.fullmatch(value):
        raise ValueError("not base64url")
    stripped = value.rstrip("=").replace("+", "-").replace("/", "_")
    if len(stripped) % 4 == 1:
        raise ValueError("bad base64url length")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


# ---------------------------------------------------------------------------------------
# VAPID keys


class VapidKeys:
    """A P-256 VAPID key pair (RFC 8292)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("VAPID keys must be P-256 (secp256r1)")
        self.private_key: Final = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key_bytes: Final[bytes] = raw
        #: uncompressed point, base64url without padding: the browser's applicationServerKey
        self.public_key_b64url: Final[str] = b64url_encode(raw)

    @classmethod
    def generate(cls) -> VapidKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes) -> VapidKeys:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("VAPID key file does not hold an EC private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> VapidKeys:
        """Load the PEM key at ``path``; on first start generate one and persist it with
        mode 0600 (written to a temp file in the same directory, then renamed, so a
        crash never leaves a half-written key). A group/other-readable existing file is
        tightened to 0600."""
        path = Path(path)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            pass
        else:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                log.warning("VAPID key %s had mode %o; tightening to 0600", path, mode)
                os.chmod(path, 0o600)
            return cls.from_pem(pem)

        keys = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(keys.to_pem())
                fh.flush()
                os.fsync(fh.fileno())
            try:
                # link() fails if another process won the race: then use its key
                os.link(tmp, path)
            except FileExistsError:
                return cls.from_pem(path.read_bytes())
        finally:
            os.unlink(tmp)
        log.info("generated new VAPID key pair at %s", path)
        return keys

    def sign_jwt(self, audience: str, subject: str, expires_at: int) -> str:
        claims = {"aud": audience, "exp": expires_at, "sub": subject}
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"typ": "JWT"})


# ---------------------------------------------------------------------------------------
# RFC 8291 encryption


def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt, ikm, "sha256")


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    # Every length here is at most one SHA-256 block: T(1) = HMAC(PRK, info || 0x01) (RFC 5869).
    return hmac.digest(prk, info + b"\x01", "sha256")[:length]


@functools.lru_cache(maxsize=4096)
def _ua_key(ua_public: bytes) -> ec.EllipticCurvePublicKey:
    """The subscription's public key; decoding checks the point is on the curve (~30 us), and
    a phone's key is the same for every push to it."""
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)


def encrypt_aes128gcm(
    payload: bytes,
    ua_public: bytes,
    auth_secret: bytes,
    *,
    salt: bytes | None = None,
    as_private: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """RFC 8291 message encryption, one RFC 8188 aes128gcm record of size 4096.

    ``salt``/``as_private`` are only for test vectors; normally both are fresh per message.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"payload is {len(payload)} octets, max {MAX_PAYLOAD_BYTES}")
    if salt is None:
        salt = os.urandom(16)
    if as_private is None:
        as_private = ec.generate_private_key(ec.SECP256R1())
    as_public = as_private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    ecdh_secret = as_private.exchange(ec.ECDH(), _ua_key(ua_public))
    # HKDF-SHA256 with hmac.digest (C, one call per step) rather than an HKDF object per key.
    ikm = _hkdf_expand(
        _hkdf_extract(auth_secret, ecdh_secret), b"WebPush: info\x00" + ua_public + as_public, 32
    )
    prk = _hkdf_extract(salt, ikm)
    cek = _hkdf_expand(prk, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf_expand(prk, b"Content-Encoding: nonce\x00", 12)
    ciphertext = AESGCM(cek).encrypt(nonce, payload + b"\x02", None)  # last record: 0x02
    header = salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public
    return header + ciphertext
