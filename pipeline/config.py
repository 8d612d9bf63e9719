"""The YAML files under the config directory: their schemas, loading and `config check`.

Each file has a pydantic schema. `pipeline` knows its own files (settings, departments,
SLA); other packages add theirs through the entry-point group `yuqing.config`
(`"sources.yaml" = "crawlers.config:SourcesFile"`), so `pipeline` imports none of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import time, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.settings import SETTINGS_FILE, ConfigError, Settings

ID_PATTERN = r"^[a-z][a-z0-9-]{1,40}$"
SEVERITIES = ("critical", "high", "medium", "low")


def require_unique_ids(items: list[Any], what: str) -> None:
    """ValueError naming the first id that appears twice (departments, rules, …)."""
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"{what} id {item.id!r} appears twice")
        seen.add(item.id)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    topic: str = Field(min_length=1, description="policy area of posts routed here")
    remit: list[str] = Field(default_factory=list)
    triage: bool = False


class DepartmentsFile(_Strict):
    departments: list[Department] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_and_one_triage(self) -> DepartmentsFile:
        require_unique_ids(self.departments, "department")
        triage = [d.id for d in self.departments if d.triage]
        if len(triage) != 1:
            raise ValueError(f"exactly one department needs `triage: true` (found {triage})")
        return self

    def ids(self) -> set[str]:
        return {d.id for d in self.departments}

    @property
    def triage(self) -> str:
        return next(d.id for d in self.departments if d.triage)


def check_timezone(name: str) -> str:
    """`name` if it is an IANA time zone (Asia/Shanghai), else ValueError."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhd])$")


def parse_duration(text: str) -> tuple[float, str]:
    """`30m`, `5h`, `1d` → (amount, unit)."""
    m = _DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"expected a number and a unit m, h or d (e.g. 30m, 5h, 1d), got {text!r}")
    return float(m.group(1)), m.group(2)


class Deadline(_Strict):
    within: str
    clock: Literal["calendar", "working"] = "calendar"
    not_after_response: bool = False

    @field_validator("within")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v

    @model_validator(mode="after")
    def _whole_working_days(self) -> Deadline:
        # Working days end at a clock time on a later day; a fraction of one has no such time.
        amount, unit = parse_duration(self.within)
        if self.clock == "working" and unit == "d" and amount != int(amount):
            raise ValueError("working days must be a whole number (use h or m for office time)")
        return self

    def calendar_delta(self) -> timedelta:
        amount, unit = parse_duration(self.within)
        return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})


class SeverityRule(_Strict):
    label: str
    ack: Deadline
    response: Deadline
    press_conference: Deadline | None = None


class OfficeHours(_Strict):
    start: time = time(9, 0)
    end: time = time(18, 0)

    @model_validator(mode="after")
    def _order(self) -> OfficeHours:
        if self.end <= self.start:
            raise ValueError("office_hours.end must be after office_hours.start")
        return self


class SlaFile(_Strict):
    timezone: str = "Asia/Shanghai"
    office_hours: OfficeHours = OfficeHours()
    severities: dict[Literal["critical", "high", "medium", "low"], SeverityRule]

    _tz = field_validator("timezone")(check_timezone)

    @model_validator(mode="after")
    def _all_severities(self) -> SlaFile:
        missing = [s for s in SEVERITIES if s not in self.severities]
        if missing:
            raise ValueError(f"severities missing: {', '.join(missing)}")
        return self


def _settings_schema(data: dict[str, Any]) -> None:
    from pipeline.settings import _FileOnlySettings

    _FileOnlySettings(**data)


# File name → schema (a pydantic model, or a callable that raises ValidationError).
SCHEMAS: dict[str, type[BaseModel] | Callable[[dict[str, Any]], Any]] = {
    SETTINGS_FILE: _settings_schema,
    "departments.yaml": DepartmentsFile,
    "sla.yaml": SlaFile,
}


def registered_schemas() -> dict[str, type[BaseModel] | Callable[[dict[str, Any]], Any]]:
    """The pipeline's schemas plus those other packages register as entry points."""
    schemas = dict(SCHEMAS)
    for ep in entry_points(group="yuqing.config"):
        schemas[ep.name] = ep.load()
    return schemas


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    except ValueError as exc:  # a date-shaped scalar that is no date: `2026-13-01`
        raise ConfigError([f"{path}: not a valid date or time: {exc}"]) from exc


def _problems(path: Path, err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        out.append(f"{path}: {key}: {msg}")
    return out


M = TypeVar("M", bound=BaseModel)


def load_file(config_dir: Path, name: str, schema: type[M]) -> M:
    """Load and validate one config file; ConfigError names file, key and problem."""
    path = config_dir / name
    if not path.exists():
        raise ConfigError([f"{path}: file missing"])
    data = _read_yaml(path)
    try:
        return schema.model_validate(data if data is not None else {})
    except ValidationError as err:
        raise ConfigError(_problems(path, err)) from None


def departments(settings: Settings) -> DepartmentsFile:
    return load_file(settings.config_dir, "departments.yaml", DepartmentsFile)


def sla(settings: Settings) -> SlaFile:
    return load_file(settings.config_dir, "sla.yaml", SlaFile)


def check(config_dir: Path) -> list[str]:
    """Validate every YAML file under `config_dir`; returns the problems (empty: all good).

    Known files are checked against their schema; any other YAML file must at least
    parse. Required files that are missing are reported too."""
    problems: list[str] = []
    schemas = registered_schemas()
    if not config_dir.is_dir():
        return [f"{config_dir}: config directory does not exist"]
    for required in ("departments.yaml", "sla.yaml"):
        if not (config_dir / required).exists():
            problems.append(f"{config_dir / required}: file missing")
    for path in sorted([*config_dir.rglob("*.yaml"), *config_dir.rglob("*.yml")]):
        try:
            data = _read_yaml(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        schema = schemas.get(str(path.relative_to(config_dir)))
        if schema is None:
            continue
        try:
            if isinstance(schema, type) and issubclass(schema, BaseModel):
                schema.model_validate(data if data is not None else {})
            else:
                schema(data if data is not None else {})
        except ValidationError as err:
            problems.extend(_problems(path, err))
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems
