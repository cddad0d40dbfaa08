from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    loyalty_id: Annotated[str, Field(max_length=64)] | None = None
    phone: Annotated[str, Field(max_length=32)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    name: Annotated[str, Field(max_length=100)] | None = None
    tier: Annotated[str, Field(pattern=r"^(basic|silver|gold|vip)$")] | None = None
    lifetime_value: Annotated[float, Field(ge=0)] | None = None
    preferred_language: Annotated[str, Field(pattern=r"^(ko|en)$")] | None = None
    home_store_id: Annotated[str, Field(max_length=64)] | None = None
    contact_consent: bool | None = None


class CustomersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: Annotated[list[CustomerIn], Field(min_length=1, max_length=1000)]


class UpsertResult(BaseModel):
    index: int
    customer_id: str | None
    created: bool
    error: str | None = None
