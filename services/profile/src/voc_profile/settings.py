from __future__ import annotations

from typing import Annotated, ClassVar

import phonenumbers
from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from voc_platform.settings import ServiceSettings, comma_list


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "profile"

    http_port: int = Field(8020, validation_alias="VOC_PROFILE_HTTP_PORT")
    grpc_port: int = Field(9020, validation_alias="VOC_PROFILE_GRPC_PORT")
    database_url: str | None = Field(None, validation_alias="VOC_PROFILE_DATABASE_URL")
    default_region: str = Field("KR", validation_alias="VOC_PROFILE_DEFAULT_REGION")
    # Signal thresholds (configuration, not code); see docs/PROFILE.md.
    repeat_window_days: int = Field(30, validation_alias="VOC_PROFILE_REPEAT_WINDOW_DAYS", gt=0)
    repeat_min_count: int = Field(2, validation_alias="VOC_PROFILE_REPEAT_MIN_COUNT", ge=1)
    swing_csat_points: float = Field(2.0, validation_alias="VOC_PROFILE_SWING_CSAT_POINTS", gt=0)
    swing_nps_points: float = Field(4.0, validation_alias="VOC_PROFILE_SWING_NPS_POINTS", gt=0)
    swing_window: int = Field(5, validation_alias="VOC_PROFILE_SWING_WINDOW", ge=1)
    chronic_window_days: int = Field(90, validation_alias="VOC_PROFILE_CHRONIC_WINDOW_DAYS", gt=0)
    chronic_min_count: int = Field(3, validation_alias="VOC_PROFILE_CHRONIC_MIN_COUNT", ge=1)
    chronic_top_n: int = Field(20, validation_alias="VOC_PROFILE_CHRONIC_TOP_N", ge=1)
    low_satisfaction_csat: float = Field(2.5, validation_alias="VOC_PROFILE_LOW_SATISFACTION_CSAT", gt=0)
    low_satisfaction_window: int = Field(5, validation_alias="VOC_PROFILE_LOW_SATISFACTION_WINDOW", ge=1)
    churn_window_days: int = Field(30, validation_alias="VOC_PROFILE_CHURN_WINDOW_DAYS", gt=0)
    # Comma-separated, as every list setting here (`vip,gold`); not JSON.
    vip_tiers: Annotated[tuple[str, ...], NoDecode] = Field(
        ("vip",), validation_alias="VOC_PROFILE_VIP_TIERS"
    )
    vip_lifetime_value: float = Field(5_000_000.0, validation_alias="VOC_PROFILE_VIP_LIFETIME_VALUE", ge=0)
    # How often stored signals whose windows moved are recomputed.
    signal_refresh_seconds: float = Field(30.0, validation_alias="VOC_PROFILE_SIGNAL_REFRESH_SECONDS", gt=0)
    # Check-ins per store API key (POST /v1/visits; per replica, as feedback's intake limit): a
    # check-in answers whether an identifier is a customer, so a key must not sweep the chain.
    checkin_rate_limit_per_second: float = Field(
        5.0, gt=0, validation_alias="VOC_PROFILE_CHECKIN_RATE_LIMIT_PER_SECOND"
    )
    checkin_rate_limit_burst: int = Field(30, ge=1, validation_alias="VOC_PROFILE_CHECKIN_RATE_LIMIT_BURST")
    # Bulk import: upload limit and rows per transaction.
    max_import_bytes: int = Field(256 * 1024 * 1024, validation_alias="VOC_PROFILE_MAX_IMPORT_BYTES", gt=0)
    import_batch_size: int = Field(1000, validation_alias="VOC_PROFILE_IMPORT_BATCH_SIZE", ge=1)
    # Heads-up on arrival (#18): a check-in raises one when the customer had a negative contact
    # within this many days (or one still unresolved), or is a churn risk or a VIP.
    heads_up_recent_days: int = Field(30, ge=0, le=366, validation_alias="VOC_PROFILE_HEADS_UP_RECENT_DAYS")
    audit_flush_seconds: float = Field(1.0, validation_alias="VOC_PROFILE_AUDIT_FLUSH_SECONDS", gt=0)

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        # The region a national-format phone number is read in (010-… is Korean for KR).
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"'{value}' is not a region phone numbers are read in (ISO 3166 code, e.g. KR, US)"
            )
        return region

    @field_validator("vip_tiers", mode="before")
    @classmethod
    def _tiers(cls, value: object) -> object:
        if isinstance(value, str):
            tiers = tuple(comma_list(value))
            # The CRM's tiers (schemas.Tier); the old JSON form ["vip"] would split into none.
            if not tiers or any(t not in ("basic", "silver", "gold", "vip") for t in tiers):
                raise ValueError(
                    "one tier or more of basic, silver, gold, vip, comma-separated (e.g. vip,gold)"
                )
            return tiers
        return value
