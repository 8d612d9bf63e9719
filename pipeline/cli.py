"""`yuqing`: the one entry point (DESIGN: Command line).

The core commands live here; stages add theirs through `Stage.register_commands`
(entry-point group `yuqing.stages`), so this module imports no other package.
Exit codes: 0 success, 1 some input failed, 2 usage or configuration error.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import Annotated

import typer

from pipeline import config as config_files
from pipeline.settings import ConfigError, Settings, load_settings

log = logging.getLogger("yuqing")

app = typer.Typer(
    name="yuqing",
    help="Public-opinion (舆情) monitoring and response pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
bus_app = typer.Typer(help="Message bus topics and consumer offsets.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(bus_app, name="bus")
app.add_typer(config_app, name="config")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
        stream=sys.stderr,
    )


def settings() -> Settings:
    """Load settings or exit 2 naming file, key and problem."""
    try:
        s = load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    setup_logging(s.log_level)
    return s


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@config_app.command("check")
def config_check() -> None:
    """Validate every YAML file under the config directory."""
    try:
        s = load_settings()
    except ConfigError as exc:
        problems = exc.problems
        config_dir = None
    else:
        config_dir = s.config_dir
        problems = config_files.check(config_dir)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{config_dir}: configuration OK")


def prepare_database(s: Settings) -> int:
    """Migrate to the schema head and load the department catalog; returns how many
    departments. What `db upgrade`, `run` and `demo` all need before anything starts."""
    from pipeline.storage.db import make_engine, session_factory, upgrade
    from pipeline.storage.repository import upsert_departments

    try:
        depts = config_files.departments(s)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    try:
        with session_factory(engine).begin() as session:
            upsert_departments(
                session, [d.model_dump(exclude={"triage", "topic"}) for d in depts.departments]
            )
    finally:
        engine.dispose()
    return len(depts.departments)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations and load the department catalog."""
    count = prepare_database(settings())
    typer.echo(f"database at head; {count} departments loaded")


@app.command()
def ingest(
    file: Annotated[str, typer.Argument(help="JSONL file of posts, or - for stdin")],
    source: Annotated[
        str | None, typer.Option("--source", help="source for lines that name none")
    ] = None,
) -> None:
    """Validate posts from JSONL and publish them to posts.raw.

    Each bad line is reported with its number and reason; good lines are published
    anyway. Exit code 1 when any line failed."""
    from pipeline.bus import BusError, open_bus
    from pipeline.ingest import ingest_stream
    from pipeline.runner import ensure_topics

    s = settings()
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    try:
        with stream, open_bus(s) as bus:
            ensure_topics(bus, s)
            result = ingest_stream(
                stream, bus, s, report=lambda m: typer.echo(m, err=True), source=source
            )
    except BusError as exc:
        raise fail(str(exc), 1) from None
    typer.echo(f"published {result.published} posts; {result.failed} lines failed", err=True)
    if result.failed:
        raise typer.Exit(1)


@app.command()
def run(
    stages: Annotated[
        list[str] | None, typer.Argument(help="stages to run (default: every installed one)")
    ] = None,
) -> None:
    """Run pipeline stages as supervised processes until Ctrl-C."""
    from pipeline.supervisor import supervise

    s = settings()
    names = prepare_run(s, stages)
    raise typer.Exit(supervise(names, s.metrics_port))


def prepare_run(s: Settings, stages: list[str] | None = None) -> list[str]:
    """The stages to run (default: every installed one), with the database at head, the
    departments loaded and the topics created; exits 2 naming an unknown stage."""
    from pipeline.bus import open_bus
    from pipeline.runner import ensure_topics, stage_classes

    known = stage_classes()
    names = list(stages or known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise fail(f"unknown stage(s) {', '.join(unknown)}; installed: {', '.join(sorted(known))}")
    prepare_database(s)
    with open_bus(s) as bus:
        ensure_topics(bus, s)
    return names


@app.command("stage", hidden=True)
def stage_cmd(name: str) -> None:
    """Run one stage in this process (what `yuqing run` starts per stage)."""
    from pipeline import metrics
    from pipeline.runner import SchemaError, run_stage

    s = settings()
    metrics.serve(s.metrics_port, s.web_host)
    try:
        run_stage(name, s)
    except KeyError as exc:
        raise fail(str(exc.args[0])) from None
    except SchemaError as exc:
        raise fail(str(exc)) from None


@bus_app.command("topics")
def bus_topics() -> None:
    """List topics with partitions and end offsets."""
    from pipeline.bus import open_bus

    s = settings()
    with open_bus(s) as bus:
        for topic, partitions in sorted(bus.topics().items()):
            total = sum(bus.end_offsets(topic).values())
            typer.echo(f"{topic}\tpartitions={partitions}\trecords={total}")


@bus_app.command("replay")
def bus_replay(
    topic: str,
    group: Annotated[str, typer.Option("--group", help="consumer group, e.g. yuqing-persist")],
    to_offset: Annotated[int | None, typer.Option("--to-offset", min=0)] = None,
    to_time: Annotated[
        datetime | None,
        typer.Option(
            "--to-time",
            help="ISO 8601; without offset: Asia/Shanghai",
            formats=[
                "%Y-%m-%dT%H:%M:%S%z",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d",
            ],
        ),
    ] = None,
) -> None:
    """Rewind a consumer group's offsets on every partition of TOPIC.

    Stop the group's stage first; it re-reads from the new offsets when it starts."""
    from pipeline.bus import BusError, open_bus
    from pipeline.messages import aware

    if (to_offset is None) == (to_time is None):
        raise fail("give exactly one of --to-offset and --to-time")
    s = settings()
    with open_bus(s) as bus:
        if topic not in bus.topics():
            raise fail(f"no topic {topic!r}")
        try:
            moved = bus.reset_offsets(
                topic, group, to_offset=to_offset, to_time=aware(to_time) if to_time else None
            )
        except BusError as exc:
            raise fail(str(exc), 1) from None
    for partition, offset in sorted(moved.items()):
        typer.echo(f"{topic}[{partition}] {group} -> {offset}")


def _register_stage_commands() -> None:
    from pipeline.runner import stage_classes

    for cls in stage_classes().values():
        cls.register_commands(app)


def _register_package_commands() -> None:
    """Commands that belong to no stage (`yuqing sla`): entry-point group
    `yuqing.commands`, each a function given the app, so this module imports no package."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="yuqing.commands"):
        ep.load()(app)


def main() -> None:
    _register_stage_commands()
    _register_package_commands()
    app()


if __name__ == "__main__":
    main()
