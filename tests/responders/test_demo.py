"""`yuqing demo` end to end: a fresh data directory, the real sample site, every stage,
the web app; alerts reach the press office's list within a minute, and Ctrl-C stops
everything cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.pipeline.processes import REPO, YUQING, base_env

pytestmark = pytest.mark.slow

LOGIN_LINE = re.compile(r"^\s+(\w+)\s+(\S+)\s+(press|department|leader|admin)")


def _read_logins(proc: subprocess.Popen[str], timeout: float) -> dict[str, str]:
    """Username → password from the demo's banner (it ends with the `stages:` line)."""
    assert proc.stdout is not None
    logins: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        m = LOGIN_LINE.match(line)
        if m:
            logins[m[1]] = m[2]
        if line.startswith("stages:"):
            return logins
    raise AssertionError(f"no demo banner (exit {proc.poll()}); logins so far {logins}")


def test_demo_raises_alerts_for_the_press_office_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    web, site = free_port(), free_port()
    env = base_env(tmp_path / "unused")
    args = ["--data-dir", str(tmp_path / "demo"), "--port", str(web), "--site-port", str(site)]
    proc = subprocess.Popen(
        [*YUQING, "demo", *args, "--new-every", "5"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        logins = _read_logins(proc, timeout=90)
        assert set(logins) >= {"press", "edu", "leader", "admin"}
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        base = f"http://127.0.0.1:{web}"
        body = json.dumps({"username": "press", "password": logins["press"]}).encode()
        deadline = time.monotonic() + 60
        while True:  # the web stage may still be starting
            try:
                request = urllib.request.Request(
                    f"{base}/api/login", body, {"Content-Type": "application/json"}
                )
                opener.open(request, timeout=5).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the web app never answered"
                time.sleep(1)
        started = time.monotonic()
        items: list[dict[str, object]] = []
        while time.monotonic() - started < 60 and not items:
            with opener.open(f"{base}/api/alerts", timeout=5) as response:
                items = json.loads(response.read())["items"]
            time.sleep(2)
        assert items, "no alert on the press list within a minute of the web app answering"
        assert {"id", "department", "severity", "state", "title"} <= set(items[0])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0
    # the sample site went with it: its port is free again
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{site}/", timeout=2)
