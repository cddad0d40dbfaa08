from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from voc_platform.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "profile"

    http_port: int = Field(8020, validation_alias="VOC_PROFILE_HTTP_PORT")
    grpc_port: int = Field(9020, validation_alias="VOC_PROFILE_GRPC_PORT")
    database_url: str | None = Field(None, validation_alias="VOC_PROFILE_DATABASE_URL")
    default_region: str = Field("KR", validation_alias="VOC_PROFILE_DEFAULT_REGION")
    # Signal thresholds (configuration, not code).
    repeat_window_days: int = 30
    repeat_min_count: int = 2
    swing_csat_points: float = 2.0
    swing_nps_points: float = 4.0
    chronic_window_days: int = 90
    chronic_min_count: int = 3
    low_satisfaction_csat: float = 2.5
    churn_window_days: int = 30
    vip_tiers: tuple[str, ...] = ("vip",)
    vip_lifetime_value: float = 5_000_000.0
