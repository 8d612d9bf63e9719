"""Health, metrics, OpenAPI docs, and the `web` stage serving on YUQING_WEB_BIND."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from pipeline.bus.local import LocalBus
from pipeline.runner import StageContext, StopFlag
from pipeline.settings import Settings
from responders.web.app import create_app
from responders.web.stage import WebStage
from tests.conftest import free_port
from tests.pipeline.processes import wait_for
from tests.responders.conftest import CONFIG
from tests.responders.web.conftest import bearer


def test_healthz_needs_the_database_at_head(client: TestClient, tmp_path: Path) -> None:
    ready = client.get("/healthz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert ready.json()["schema_revision"] == ready.json()["expected_revision"]

    empty = Settings(
        config_dir=CONFIG, data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    )
    with TestClient(create_app(empty)) as unmigrated:
        answer = unmigrated.get("/healthz")
        assert answer.status_code == 503 and answer.json()["database"] == "schema not at head"
        assert unmigrated.get("/healthz/live").status_code == 200


def test_metrics_count_requests_and_logins(client: TestClient, tokens: dict[str, str]) -> None:
    client.get("/api/alerts", headers=bearer(tokens["press1"]))
    client.post("/api/login", json={"username": "press1", "password": "wrong"})
    text = client.get("/metrics").text
    assert 'yuqing_web_requests_total{method="GET",route="/api/alerts",status="200"}' in text
    assert 'yuqing_web_logins_total{outcome="failed"}' in text


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/api/docs").status_code == 200
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {
        "/api/alerts",
        "/api/alerts/{alert_id}/respond",
        "/api/stream",
        "/api/login",
        "/api/users",
        "/api/departments",
    } <= set(paths)
    respond = paths["/api/alerts/{alert_id}/respond"]["post"]
    assert respond["requestBody"]["required"] is True


def test_web_stage_serves_on_the_bind_address_and_stops(
    web_settings: Settings, tmp_path: Path
) -> None:
    settings = web_settings.model_copy(update={"web_bind": f"127.0.0.1:{free_port()}"})
    bus = LocalBus(tmp_path / "bus.sqlite3")
    stop = StopFlag()
    stage = WebStage(StageContext(settings=settings, bus=bus))
    thread = threading.Thread(target=stage.run, args=(stop,))
    thread.start()
    try:
        url = f"http://{settings.web_bind}/healthz"

        def up() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 15, "the web stage")
    finally:
        stop.set()
        thread.join(15)
        bus.close()
    assert not thread.is_alive()
