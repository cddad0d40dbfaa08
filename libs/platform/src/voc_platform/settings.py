"""Settings shared by every service, read from the environment (names as in DESIGN §5).

Each service subclasses `ServiceSettings` and adds its own ports and database URL with explicit
`VOC_<SERVICE>_*` aliases, so the environment contract is greppable in one place per service.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - the refused-outside-development default
DEV_INTERNAL_TOKEN = "dev-internal-token"  # noqa: S105
DEV_JWT_SECRET = "dev-jwt-secret-change-me-in-production"  # noqa: S105


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOC_", extra="ignore", populate_by_name=True)

    service_name: ClassVar[str] = "service"
    default_http_port: ClassVar[int] = 8000
    default_grpc_port: ClassVar[int] = 9000

    environment: Literal["development", "test", "production"] = Field(
        "development", validation_alias="VOC_ENV"
    )
    data_dir: Path = Path("./var")
    nats_url: str = "nats://127.0.0.1:4230"
    # JetStream replicas of the event streams: 1 embedded, 3 on a cluster.
    nats_stream_replicas: int = Field(1, ge=1, le=5)
    admin_token: str = DEV_ADMIN_TOKEN
    internal_token: str = DEV_INTERNAL_TOKEN
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    otlp_endpoint: str | None = Field(None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")

    # gRPC targets of the other services (host:port).
    feedback_grpc_target: str = "127.0.0.1:9010"
    profile_grpc_target: str = "127.0.0.1:9020"
    actions_grpc_target: str = "127.0.0.1:9030"
    notify_grpc_target: str = "127.0.0.1:9040"
    grpc_timeout_seconds: float = 2.0

    http_port: int = 0
    grpc_port: int = 0
    database_url: str | None = None
    # SQLite group commit: under load a flush waits this long for more writes (0: never wait).
    sqlite_group_linger_ms: float = Field(3.0, ge=0, le=50)

    @field_validator("nats_url")
    @classmethod
    def _nats_scheme(cls, value: str) -> str:
        if not value.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ValueError("VOC_NATS_URL must start with nats://, tls://, ws:// or wss://")
        return value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        if self.environment == "production":
            for name, default in (
                ("VOC_ADMIN_TOKEN", DEV_ADMIN_TOKEN),
                ("VOC_INTERNAL_TOKEN", DEV_INTERNAL_TOKEN),
            ):
                value = self.admin_token if name == "VOC_ADMIN_TOKEN" else self.internal_token
                if value == default or len(value) < 16:
                    raise ValueError(f"{name} must be set to a secret of 16+ characters in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / f'{self.service_name}.db').resolve()}"
