from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from voc_notify.service import OUTCOMES

Role = Literal["staff", "shift_lead", "store_manager", "area_manager", "cx_admin"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(Strict):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    staff: dict[str, object]


class Keys(Strict):
    p256dh: Annotated[str, Field(min_length=1, max_length=200)]
    auth: Annotated[str, Field(min_length=1, max_length=64)]


class SubscriptionIn(BaseModel):
    # Browsers add fields (expirationTime); accept and ignore them.
    model_config = ConfigDict(extra="ignore")

    endpoint: Annotated[str, Field(min_length=8, max_length=2048)]
    keys: Keys
    expirationTime: int | None = None  # noqa: N815 - the browser's name


class ResolveIn(Strict):
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    note: Annotated[str, Field(max_length=2000)] = ""


class ReceiptIn(Strict):
    kind: Literal["shown", "opened"]
    device_id: Annotated[str, Field(max_length=64)] | None = None


class StoreIn(Strict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    area_id: Annotated[str, Field(max_length=64)] | None = None
    format: Annotated[str, Field(max_length=32)] | None = None
    region: Annotated[str, Field(max_length=64)] | None = None
    timezone: Annotated[str, Field(max_length=64)] = "Asia/Seoul"
    language: Literal["ko", "en"] = "ko"


class StaffIn(Strict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.]+$")]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    password: Annotated[str, Field(min_length=8, max_length=200)]
    role: Role
    store_ids: list[Annotated[str, Field(max_length=64)]] = []
    area_id: Annotated[str, Field(max_length=64)] | None = None
    language: Literal["ko", "en"] = "ko"
