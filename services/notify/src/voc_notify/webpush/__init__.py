"""Web Push sender (RFC 8030 transport, RFC 8291 message encryption, RFC 8292 VAPID).

The notify delivery worker owns retries and subscription bookkeeping; this module
only encrypts, authenticates, sends one message and classifies the answer:

* ``accepted`` - the push service took the message (200/201/202, any other 2xx).
* ``gone``     - 404/410: the subscription is dead, the caller removes it.
* ``retry``    - 408/429/5xx or a network error/timeout; ``retry_after`` carries the
  server's ``Retry-After`` in seconds when present. Use :func:`backoff_delay`.
* ``rejected`` - 400/401/403/413, redirects and other 4xx: retrying will not help.

SSRF: every endpoint goes through :class:`PushAllowlist` before any byte leaves the
process, redirects are never followed, and the URL object that is requested is the
one that was checked. Of a failed answer only ``HTTP <code> <standard reason>`` is kept
(network errors: ``network error`` / ``timeout``), never the endpoint's own words.
"""

from voc_notify.webpush.crypto import (
    MAX_PAYLOAD_BYTES,
    PayloadTooLarge,
    VapidKeys,
    b64url_decode,
    b64url_encode,
    encrypt_aes128gcm,
)
from voc_notify.webpush.endpoints import (
    DEFAULT_PUSH_HOSTS,
    EndpointNotAllowed,
    InvalidSubscription,
    PushAllowlist,
    PushSubscription,
)
from voc_notify.webpush.sender import (
    PushRequest,
    PushResult,
    PushStatus,
    WebPushSender,
    backoff_delay,
    normalize_topic,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_PUSH_HOSTS",
    "MAX_PAYLOAD_BYTES",
    "EndpointNotAllowed",
    "InvalidSubscription",
    "PayloadTooLarge",
    "PushAllowlist",
    "PushRequest",
    "PushResult",
    "PushStatus",
    "PushSubscription",
    "VapidKeys",
    "WebPushSender",
    "b64url_decode",
    "b64url_encode",
    "backoff_delay",
    "encrypt_aes128gcm",
    "normalize_topic",
    "parse_retry_after",
]
