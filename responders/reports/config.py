"""`config/report.yaml`: who the weekly report names (通报), when it is generated, what
it shows. Data rather than code, so the district can tighten a rule without a release;
validated by `yuqing config check` (entry-point group `yuqing.config`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from pipeline import config as config_files
from pipeline.settings import Settings

Severity = Literal["critical", "high", "medium", "low"]
Format = Literal["html", "pdf", "json"]

REPORT_FILE = "report.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedRules(_Strict):
    """A department is named for each rule it breaks (DESIGN defaults)."""

    response_on_time_rate_below: float = Field(0.8, ge=0, le=1)
    overdue_severities: tuple[Severity, ...] = ("critical", "high")
    transfer_rejections: int = Field(2, ge=1)
    median_response_hours_above: float | None = Field(None, gt=0)


class Schedule(_Strict):
    weekday: int = Field(1, ge=1, le=7, description="ISO weekday, 1 = Monday")
    at: time = time(8, 0)


class ReportFile(_Strict):
    named: NamedRules = NamedRules()
    schedule: Schedule = Schedule()
    archive_formats: tuple[Format, ...] = Field(("html", "pdf", "json"), min_length=1)
    top_events: int = Field(5, ge=0, le=50)
    top_topics: int = Field(8, ge=1, le=50)
    response_effect_hours: float = Field(24, gt=0, le=24 * 7)


@dataclass(frozen=True)
class ReportOptions:
    """Everything a report needs from the config directory: its own file, the SLA time
    zone (weeks start on Monday 00:00 there) and the names people read."""

    config: ReportFile
    tz: ZoneInfo
    severity_labels: dict[str, str]

    @classmethod
    def load(cls, settings: Settings) -> ReportOptions:
        """Read report.yaml and sla.yaml; ConfigError names file, key and problem."""
        sla = config_files.sla(settings)
        path = settings.config_dir / REPORT_FILE
        report = (
            config_files.load_file(settings.config_dir, REPORT_FILE, ReportFile)
            if path.exists()
            else ReportFile()
        )
        labels = {name: rule.label for name, rule in sla.severities.items()}
        return cls(report, ZoneInfo(sla.timezone), labels)
