"""Settings: every default in one place, then `config/yuqing.yaml`, then `YUQING_*`.

Precedence (highest first): environment variable `YUQING_<NAME>`, the key `<name>` in
`<config_dir>/yuqing.yaml`, the default below. The config directory itself comes from
`YUQING_CONFIG_DIR` (default `./config`), since it says where the file is.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "YUQING_"
SETTINGS_FILE = "yuqing.yaml"


class ConfigError(Exception):
    """Invalid configuration: names where (file or variable), which key and what is wrong."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class Settings(BaseSettings):
    """Process settings. Field names are the YAML keys; `YUQING_` + upper case the env."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    config_dir: Path = Field(Path("config"), description="directory of the YAML config")
    data_dir: Path = Field(
        Path("var"), description="SQLite database, local bus and model cache live here"
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file in the data directory"
    )
    bus: Literal["local", "kafka"] = Field("local", description="bus transport")
    kafka_bootstrap_servers: str = Field(
        "localhost:9092", description="comma-separated host:port list of Kafka brokers"
    )
    kafka_client_id: str = Field("yuqing", description="Kafka client id prefix")
    kafka_session_timeout_ms: int = Field(
        10_000, ge=1000, description="consumer-group session timeout"
    )
    kafka_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=5000,
        description="longest a consumer's fetch waits at the broker for new records "
        "(a broker that answers only then, as Tansu does, adds it to every hop's latency)",
    )
    topic_partitions: int = Field(
        6, ge=1, le=256, description="partitions for topics yuqing creates"
    )
    local_bus_retention_hours: float = Field(
        168.0, gt=0, description="local bus keeps records this long"
    )
    web_bind: str = Field("127.0.0.1:8000", description="host:port of the web app")
    metrics_port: int = Field(
        9400,
        ge=0,
        le=65535,
        description="Prometheus port; `yuqing run` gives stage i port + i; 0 disables",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    secret_key: SecretStr | None = Field(
        None, description="signs sessions and salts author hashes; required in production"
    )
    # 1,000 rather than 500: a batch costs the responder ~20 statements whatever its size
    # (measured on Kafka + PostgreSQL: ~5 % more posts/s; 2,000 gave nothing more).
    stage_batch_size: int = Field(1000, ge=1, description="records a stage takes per poll")
    # 3: on the benchmark's two cores the responder's parts overlap their waits on
    # PostgreSQL with each other's Python; 2 did less, 4 no more (see the README).
    stage_threads: int = Field(
        3,
        ge=1,
        le=8,  # each holds a database connection; the pool has 5 (+10 overflow)
        description="threads a stage may handle one batch's independent parts on "
        "(the responder's topics, on PostgreSQL)",
    )
    stage_max_retries: int = Field(
        3, ge=0, description="retries of a failing message before it goes to the DLQ"
    )
    sources_file: str = Field(
        "sources.yaml",
        min_length=1,
        description="crawl sources, relative to the config directory (or an absolute path)",
    )
    web_session_hours: float = Field(
        12.0, gt=0, description="a web session ends this long after login, whatever happens"
    )
    web_session_idle_minutes: float = Field(
        120.0, gt=0, description="a web session unused this long ends"
    )
    web_login_max_failures: int = Field(
        5, ge=1, description="failed logins per username and address before a wait"
    )
    web_login_max_failures_per_ip: int = Field(
        30, ge=1, description="failed logins per address (any username) before a wait"
    )
    web_login_window_minutes: float = Field(
        15.0, gt=0, description="window the failed logins are counted in"
    )
    web_password_min_length: int = Field(10, ge=8, description="shortest password accepted")
    web_stream_poll_seconds: float = Field(
        1.0, gt=0, le=30, description="how often the event stream looks for alert changes"
    )
    web_forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="proxies whose X-Forwarded-For/-Proto the web app believes (comma list)",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("web_bind")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port, e.g. 127.0.0.1:8000")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats the YAML file, which `load_settings` passes as init.
        return (env_settings, init_settings)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'yuqing.sqlite3').resolve()}"

    @property
    def web_host(self) -> str:
        return self.web_bind.rpartition(":")[0]

    @property
    def web_port(self) -> int:
        return int(self.web_bind.rpartition(":")[2])

    def secret(self) -> str:
        """The secret key, or a fixed development value (logged as a warning at start)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return "yuqing-development-secret"


class _FileOnlySettings(Settings):
    """Settings validated from the YAML file alone, to attribute errors to it."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        **_: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _format_errors(err: ValidationError, where: str, env: bool) -> list[str]:
    problems = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if env:
            key = ENV_PREFIX + key.upper()
        got = e.get("input")
        got_txt = "" if isinstance(got, dict) else f" (got {got!r})"
        problems.append(f"{where}: {key}: {e['msg']}{got_txt}")
    return problems


def read_settings_file(config_dir: Path) -> dict[str, Any]:
    """The YAML settings as a dict ({} when the file is absent)."""
    path = config_dir / SETTINGS_FILE
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping of setting names to values"])
    return data


def load_settings(**overrides: Any) -> Settings:
    """Settings for this process; raises ConfigError naming file or variable and key."""
    config_dir = Path(
        overrides.get("config_dir") or os.environ.get(ENV_PREFIX + "CONFIG_DIR") or "config"
    )
    file_values = read_settings_file(config_dir)
    file_values["config_dir"] = config_dir
    path = config_dir / SETTINGS_FILE
    # Validate the file alone first so that its errors name the file, not the env.
    try:
        _FileOnlySettings(**file_values)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, str(path), env=False)) from None
    try:
        return Settings(**{**file_values, **overrides})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, "environment", env=True)) from None
