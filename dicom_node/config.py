"""Node settings: TOML file < environment (``DICOM_NODE_*``) < command-line flags.

Validated with pydantic-settings; a bad value raises :class:`ConfigError` with a
single message naming the setting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from dicom_node.errors import ConfigError, DicomNodeError

ENV_PREFIX = "DICOM_NODE_"
_AET_RE = re.compile(r"^[\x20-\x7e]{1,16}$")


def _check_ae_title(value: str) -> str:
    value = value.strip()
    if not value or not _AET_RE.match(value) or "\\" in value:
        raise ValueError(
            f"AE title must be 1-16 printable ASCII characters without '\\', got {value!r}"
        )
    return value


class Destination(BaseModel):
    """A DICOM peer to deliver results to, written ``AET@HOST:PORT``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ae_title: str
    host: str
    port: int = Field(ge=1, le=65535)

    @field_validator("ae_title")
    @classmethod
    def _aet(cls, value: str) -> str:
        return _check_ae_title(value)

    @classmethod
    def parse(cls, text: str) -> Destination:
        match = re.fullmatch(
            r"(?P<aet>[^@]+)@(?P<host>[^:]+|\[[^\]]+\]):(?P<port>\d+)", text.strip()
        )
        if match is None:
            raise ValueError(f"destination must be AET@HOST:PORT, got {text!r}")
        return cls(ae_title=match["aet"], host=match["host"].strip("[]"), port=int(match["port"]))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


class AllowedCaller(BaseModel):
    """A calling AE title allowed to associate, optionally pinned to a host/IP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ae_title: str
    host: str | None = None

    @field_validator("ae_title")
    @classmethod
    def _aet(cls, value: str) -> str:
        return _check_ae_title(value)

    @classmethod
    def parse(cls, text: str) -> AllowedCaller:
        aet, _, host = text.strip().partition("@")
        return cls(ae_title=aet, host=host or None)

    def __str__(self) -> str:
        return self.ae_title if self.host is None else f"{self.ae_title}@{self.host}"


class AnalysisRules(BaseModel):
    """Which complete studies are analysed (see :mod:`dicom_node.rules`)."""

    model_config = ConfigDict(extra="forbid")

    modalities: list[str] = Field(default_factory=lambda: ["MR"])
    body_parts: list[str] = Field(default_factory=lambda: ["HEAD", "BRAIN", "SKULL", "NEURO"])
    description_patterns: list[str] = Field(
        default_factory=lambda: [
            r"\bbrain\b",
            r"\bhead\b",
            r"\bneuro",
            r"\bcran",
            r"\bskull\b",
            r"\bIAM\b",
            r"\bstroke\b",
            r"\bMS\b",
            r"\bpituitary\b",
        ]
    )


class NodeSettings(BaseSettings):
    """Every setting of the node; field names are the TOML keys and flag names."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    ae_title: str = "NEUROTRIAGE"
    port: int = Field(default=11112, ge=1, le=65535)
    bind: str = "0.0.0.0"  # noqa: S104 - a DICOM node listens for scanners; the allow-list guards it
    data_dir: Path = Path("var")
    storage: Path | None = None
    database: str | None = None
    broker: str | None = None
    allow: Annotated[list[AllowedCaller], NoDecode] = Field(default_factory=list)
    allow_any: bool = False
    destinations: Annotated[list[Destination], NoDecode] = Field(default_factory=list)
    quiet_period: float = Field(default=10.0, gt=0)
    max_associations: int = Field(default=16, ge=1)
    scp_processes: int = Field(default=2, ge=1, le=64)
    min_free_disk_mb: int = Field(default=1024, ge=0)
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    metrics_bind: str = "127.0.0.1"
    no_worker: bool = False
    worker_concurrency: int = Field(default=1, ge=1)
    device: str = "cpu"
    bundle: Path | None = None
    #: User queries (JSON/TOML, finding id -> sentences): scored, not called
    #: (:mod:`pipeline.model.user_queries`).
    queries: Path | None = None
    #: Operating points of the present/absent calls, overriding the bundle's:
    #: ``"youden"``, or a default with overrides, ``"youden,abnormal=sens90"``
    #: (:func:`pipeline.model.operating_points.resolve_operating_points`); it
    #: replaces every finding's point, so findings it does not name get the default
    #: it gives, else ``sens90``. Empty: the bundle's own.
    operating_points: str = ""
    delivery_max_attempts: int = Field(default=12, ge=1)
    delivery_backoff_base: float = Field(default=2.0, gt=0)
    delivery_backoff_max: float = Field(default=600.0, gt=0)
    analysis_rules: AnalysisRules = Field(default_factory=AnalysisRules)

    @field_validator("ae_title")
    @classmethod
    def _aet(cls, value: str) -> str:
        return _check_ae_title(value)

    @field_validator("allow", mode="before")
    @classmethod
    def _parse_allow(cls, value: Any) -> Any:
        return _parse_list(value, AllowedCaller.parse)

    @field_validator("destinations", mode="before")
    @classmethod
    def _parse_destinations(cls, value: Any) -> Any:
        return _parse_list(value, Destination.parse)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {value!r}")
        return value

    @field_validator("operating_points")
    @classmethod
    def _operating_points(cls, value: str) -> str:
        if not value.strip():
            return ""
        from pipeline.model.operating_points import parse_operating_points

        try:
            parse_operating_points(value)
        except DicomNodeError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    # Resolved paths --------------------------------------------------------
    @property
    def storage_dir(self) -> Path:
        return self.storage if self.storage is not None else self.data_dir / "storage"

    @property
    def database_url(self) -> str:
        if self.database:
            return self.database
        return f"sqlite:///{(self.data_dir / 'registry.sqlite').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def _parse_list(value: Any, parse: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list: {exc.msg}") from None
        else:
            value = [item for item in re.split(r"[,\s]+", text) if item]
    if isinstance(value, list | tuple):
        return [parse(item) if isinstance(item, str) else item for item in value]
    return value


def load_settings(config_file: Path | None = None, **overrides: Any) -> NodeSettings:
    """Build the settings from a TOML file, the environment and ``overrides`` (flags).

    ``None`` values in ``overrides`` mean "flag not given" and are dropped.
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {str(config_file)!r} does not exist")
    flags = {key: value for key, value in overrides.items() if value is not None}
    settings_cls = type(
        "FileNodeSettings",
        (NodeSettings,),
        {
            "model_config": SettingsConfigDict(
                **{**NodeSettings.model_config, "toml_file": config_file}
            )
        },
    )
    try:
        return settings_cls(**flags)  # type: ignore[no-any-return]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigError(
            f"invalid setting {where!r}: {first['msg']} "
            f"(flag --{where.replace('_', '-')}, environment {ENV_PREFIX}{where.upper()})"
        ) from None
