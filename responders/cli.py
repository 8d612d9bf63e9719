"""Responder commands that belong to no stage: `yuqing sla due`.

Registered through the entry-point group `yuqing.commands`; heavy imports stay inside the
commands so that `yuqing --help` does not load the holiday calendar.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pipeline.config import SEVERITIES

sla_app = typer.Typer(help="Acknowledgement and response deadlines.", no_args_is_help=True)


@sla_app.command("due")
def sla_due(
    severity: Annotated[str, typer.Option("--severity", help=" | ".join(SEVERITIES))],
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="when the alert was raised, ISO 8601; without offset Asia/Shanghai (default: now)",
        ),
    ] = None,
) -> None:
    """Print the due times an alert of SEVERITY raised at --from gets, as one JSON object."""
    from datetime import datetime

    from pipeline.cli import fail, settings
    from pipeline.settings import ConfigError
    from responders.deadlines import load_calculator, parse_time

    if severity not in SEVERITIES:
        raise fail(f"--severity: unknown {severity!r}; expected one of {', '.join(SEVERITIES)}")
    try:
        calculator = load_calculator(settings())
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if from_ is None:
        raised_at = datetime.now(calculator.tz)
    else:
        try:
            raised_at = parse_time(from_, calculator.tz)
        except ValueError:
            raise fail(
                f"--from: cannot read {from_!r} as an ISO 8601 time "
                "(e.g. 2026-10-01T10:00 or 2026-10-01T10:00:00+08:00)"
            ) from None
    typer.echo(json.dumps(calculator.due(severity, raised_at).as_json(), ensure_ascii=False))


def register_commands(app: typer.Typer) -> None:
    app.add_typer(sla_app, name="sla")
