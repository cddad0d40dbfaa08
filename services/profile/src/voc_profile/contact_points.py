"""How to reach a customer: consent, e-mail and phone as stored (notify asks right before it
sends a follow-up message). An erased customer answers `erased`, a merged one its survivor's.
Asked by contact instead (`by_contact`), the customers owning it answer: the most restrictive."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from voc_platform.dbsync import Prepared, Reader
from voc_profile.models import Customer, Identifier
from voc_profile.resolution import Identifiers, owners

MAX_MERGE_HOPS = 5

_CUSTOMER = Prepared(
    select(
        Customer.id,
        Customer.contact_consent,
        Customer.preferred_language,
        Customer.merged_into,
        Customer.erased_at,
    ).where(Customer.id == bindparam("customer_id"))
)
# A customer has a handful of identifiers: all read, the e-mail and phone picked here.
_IDENTIFIERS = Prepared(
    select(Identifier.kind, Identifier.value)
    .where(Identifier.customer_id == bindparam("customer_id"))
    .order_by(Identifier.kind, Identifier.value)
)


@dataclass(frozen=True, slots=True)
class ContactPoints:
    customer_id: str
    found: bool
    erased: bool = False
    #: None: never stated (neither agreed nor opted out).
    contact_consent: bool | None = None
    email: str = ""
    phone: str = ""
    preferred_language: str = ""


def contact_points(reader: Reader, *, customer_id: str) -> ContactPoints:
    """The customer's consent and contact points, following merges to the survivor."""
    row = reader.first(_CUSTOMER, {"customer_id": customer_id})
    for _ in range(MAX_MERGE_HOPS):
        if row is None or row.merged_into is None:
            break
        row = reader.first(_CUSTOMER, {"customer_id": row.merged_into})
    if row is None:
        return ContactPoints(customer_id=customer_id, found=False)
    if row.erased_at is not None:
        return ContactPoints(customer_id=row.id, found=True, erased=True)
    found: dict[str, str] = {}
    for kind, value in reader.all(_IDENTIFIERS, {"customer_id": row.id}):
        if kind in ("email", "phone"):
            found.setdefault(kind, value)  # the first of each kind, in a stable order
    return ContactPoints(
        customer_id=row.id,
        found=True,
        contact_consent=row.contact_consent,
        email=found.get("email", ""),
        phone=found.get("phone", ""),
        preferred_language=row.preferred_language or "",
    )


def by_contact(reader: Reader, *, identifiers: Identifiers) -> ContactPoints:
    """The customers on file with any of these (normalized) identifiers: an erased one answers
    first, then one who opted out (a message to this contact would reach them), else the owner
    of the first identifier. Not found when nobody owns any."""
    owned = owners(reader, identifiers=identifiers)
    if not owned:
        return ContactPoints(customer_id="", found=False)
    answers = [contact_points(reader, customer_id=owner) for owner in dict.fromkeys(owned.values())]
    for answer in answers:
        if answer.erased:
            return answer
    for answer in answers:
        if answer.contact_consent is False:
            return answer
    return answers[0]
