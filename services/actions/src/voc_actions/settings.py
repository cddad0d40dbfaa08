from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from voc_platform.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "actions"

    http_port: int = Field(8030, validation_alias="VOC_ACTIONS_HTTP_PORT")
    grpc_port: int = Field(9030, validation_alias="VOC_ACTIONS_GRPC_PORT")
    database_url: str | None = Field(None, validation_alias="VOC_ACTIONS_DATABASE_URL")
