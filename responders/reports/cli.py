"""`yuqing report weekly` and `yuqing import history` (DESIGN: Command line).

Registered through the entry-point group `yuqing.commands`; heavy imports (WeasyPrint,
the holiday calendar) stay inside the commands so that `yuqing --help` stays quick.
Exit codes: 0 success, 1 some input line failed, 2 usage, configuration or schema error.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from pipeline.settings import Settings

report_app = typer.Typer(help="Reports for the district leadership.", no_args_is_help=True)
import_app = typer.Typer(help="Load past data for the reports.", no_args_is_help=True)


@contextmanager
def _database() -> Iterator[tuple[sessionmaker[Session], Settings]]:
    """Sessions on the configured database, which must be at the schema head (else 2)."""
    from pipeline.cli import fail, settings
    from pipeline.storage.db import current_revision, head_revision, make_engine, session_factory

    s = settings()
    url = s.resolved_database_url
    current, head = current_revision(url), head_revision()
    if current != head:
        raise fail(
            f"database is at revision {current or '(empty)'}, this version needs {head}: "
            "run `yuqing db upgrade`"
        )
    engine = make_engine(url)
    try:
        yield session_factory(engine), s
    finally:
        engine.dispose()


@report_app.command("weekly")
def report_weekly(
    out: Annotated[str, typer.Option("--out", help="file to write, or - for stdout")],
    week: Annotated[
        str | None, typer.Option("--week", help="ISO week, e.g. 2026-W48 (default: last week)")
    ] = None,
    fmt: Annotated[
        Literal["html", "pdf", "json"], typer.Option("--format", help="html | pdf | json")
    ] = "html",
) -> None:
    """Write the weekly response-effectiveness report of WEEK as of now."""
    from pipeline.cli import fail
    from pipeline.messages import now_utc
    from pipeline.settings import ConfigError
    from responders.reports.config import ReportOptions
    from responders.reports.render import render
    from responders.reports.weekly import IsoWeek, build_weekly

    with _database() as (sessions, s):
        try:
            options = ReportOptions.load(s)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        now = now_utc()
        try:
            chosen = IsoWeek.parse(week) if week else IsoWeek.before(now, options.tz)
        except ValueError as exc:
            raise fail(f"--week: {exc}") from None
        with sessions() as session:
            content = render(build_weekly(session, chosen, options, now), fmt)
    if out == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    try:
        Path(out).write_bytes(content)
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror}") from None
    typer.echo(f"weekly report {chosen} ({fmt}, {len(content):,} bytes) written to {out}", err=True)


@import_app.command("history")
def import_history_cmd(
    file: Annotated[str, typer.Argument(help="JSONL file of past items, or - for stdin")],
) -> None:
    """Load past items (id, title, department, severity, created, acknowledged,
    responded, closed) for the reports; idempotent by id. Each bad line is reported
    with its number and reason, the good ones are kept; exit code 1 when any failed."""
    from pipeline.cli import fail
    from pipeline.settings import ConfigError
    from responders.deadlines import load_calculator
    from responders.reports.history import import_history

    with _database() as (sessions, s):
        try:
            calculator = load_calculator(s)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        try:
            stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
        except OSError as exc:
            raise fail(f"cannot read {file}: {exc.strerror}") from None
        with stream:
            result = import_history(
                sessions, stream, calculator, report=lambda m: typer.echo(m, err=True)
            )
    typer.echo(
        f"{result.lines - result.failed} items read, {result.stored} new or changed; "
        f"{result.failed} lines failed",
        err=True,
    )
    if result.failed:
        raise typer.Exit(1)


def register_commands(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
    app.add_typer(import_app, name="import")
