from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from voc_platform.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "feedback"

    http_port: int = Field(8010, validation_alias="VOC_FEEDBACK_HTTP_PORT")
    grpc_port: int = Field(9010, validation_alias="VOC_FEEDBACK_GRPC_PORT")
    database_url: str | None = Field(None, validation_alias="VOC_FEEDBACK_DATABASE_URL")
    idempotency_ttl_seconds: int = 24 * 3600
    max_text_chars: int = 4000
