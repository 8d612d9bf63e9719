"""`yuqing demo`: the whole product on one machine, from a fresh checkout, in one command.

What a visitor needs to see the product work: the local sample site (every channel kind,
new posts over time), every stage on the embedded defaults (local bus, SQLite under
`var/demo`), the web app, and one user per role. Passwords are generated at every start
and printed once; the demo data directory is kept between runs (`--fresh` starts over).
Ctrl-C stops the stages, the web app and the sample site.

The sample site runs as its own process (`python -m crawlers.sample_site`) so that this
module imports nothing of `crawlers/`; its sources file is the shipped
`config/sources.sample.yaml`, with the address rewritten when `--site-port` moves it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

SAMPLE_SOURCES = "sources.sample.yaml"
SAMPLE_BASE = "http://127.0.0.1:8765"
# (username, role, department): who the demo lets in.
DEMO_USERS = (
    ("press", "press", None),
    ("edu", "department", "education"),
    ("env", "department", "environment"),
    ("enforce", "department", "urban-enforcement"),
    ("leader", "leader", None),
    ("admin", "admin", None),
)


def _wait_for(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    """Until `url` answers; exits 1 naming `what` when the process dies or time runs out."""
    from pipeline.cli import fail

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise fail(f"{what} exited with {proc.returncode} (is the port taken?)", 1)
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # an HTTP answer of any status: the server is up
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise fail(f"{what} did not answer at {url} within {timeout:.0f} s", 1)


def _sources_file(config_dir: Path, data_dir: Path, site: str) -> str:
    """The sample sources, pointing at `site` (a file under the data dir if it moved)."""
    if site == SAMPLE_BASE:
        return SAMPLE_SOURCES
    text = (config_dir / SAMPLE_SOURCES).read_text(encoding="utf-8").replace(SAMPLE_BASE, site)
    path = data_dir / "sources.demo.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path.resolve())


def _demo_users(database_url: str, min_length: int) -> list[tuple[str, str, str | None, str]]:
    """Create or reset the demo users; (username, role, department, password) each."""
    from pipeline.storage.db import make_engine, session_factory
    from pipeline.storage.models import User
    from responders.web import accounts
    from responders.web.security import random_password

    engine = make_engine(database_url)
    out = []
    try:
        with session_factory(engine).begin() as session:
            for username, role, department in DEMO_USERS:
                password = random_password()
                exists = session.query(User.id).filter(User.username == username).first()
                if exists:
                    accounts.set_password(
                        session, username, password, min_length=min_length, by="demo"
                    )
                else:
                    accounts.add_user(
                        session,
                        username=username,
                        role=role,
                        department_id=department,
                        password=password,
                        min_length=min_length,
                        by="demo",
                    )
                out.append((username, role, department, password))
    finally:
        engine.dispose()
    return out


def demo(
    port: Annotated[int, typer.Option(help="port of the web app")] = 8000,
    site_port: Annotated[int, typer.Option(help="port of the sample site")] = 8765,
    data_dir: Annotated[Path, typer.Option(help="where the demo keeps its data")] = Path(
        "var/demo"
    ),
    fresh: Annotated[bool, typer.Option(help="delete the demo data first")] = False,
    new_every: Annotated[float, typer.Option(help="seconds between new sample posts")] = 30.0,
) -> None:
    """Run everything on embedded defaults: sample site, every stage, the web app."""
    from pipeline.cli import prepare_run, settings
    from pipeline.supervisor import supervise

    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    site = f"http://127.0.0.1:{site_port}"
    config_dir = settings().config_dir
    # The stages are child processes: they read their settings from this environment.
    os.environ.update(
        YUQING_DATA_DIR=str(data_dir.resolve()),
        YUQING_BUS="local",
        YUQING_WEB_BIND=f"127.0.0.1:{port}",
        YUQING_SOURCES_FILE=_sources_file(config_dir, data_dir, site),
    )
    os.environ.pop("YUQING_DATABASE_URL", None)
    s = settings()
    names = prepare_run(s)
    users = _demo_users(s.resolved_database_url, s.web_password_min_length)

    site_args = ["--port", str(site_port), "--new-every", str(new_every)]
    sample = subprocess.Popen(
        [sys.executable, "-m", "crawlers.sample_site", *site_args], stdout=subprocess.DEVNULL
    )
    try:
        _wait_for(f"{site}/", sample, "the sample site")
        typer.echo(f"\nyuqing demo: open http://127.0.0.1:{port}/ (sample site: {site}/)")
        typer.echo("logins (passwords are new at every start):")
        for username, role, department, password in users:
            who = f"{role} ({department})" if department else role
            typer.echo(f"  {username:<8} {password:<18} {who}")
        typer.echo(f"stages: {', '.join(names)}; data in {data_dir}; Ctrl-C stops everything\n")
        code = supervise(names, s.metrics_port)
    finally:
        sample.terminate()
        try:
            sample.wait(10)
        except subprocess.TimeoutExpired:
            sample.kill()
    raise typer.Exit(code)


def register_commands(app: typer.Typer) -> None:
    app.command("demo")(demo)
