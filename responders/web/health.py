"""`/healthz` (liveness and readiness) and `/metrics` (Prometheus), without login.

`/healthz/live` answers while the process serves; `/healthz` also needs the database to
answer and to be at the schema this code expects, so a load balancer sends no traffic to
a replica that would fail every request (and a deploy that forgot `yuqing db upgrade`
shows at once)."""

from __future__ import annotations

from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from pipeline.storage.db import head_revision
from responders.web.schemas import Health

router = APIRouter(tags=["health"])


@lru_cache(maxsize=1)
def _head() -> str:
    return head_revision()


@router.get("/healthz/live", response_model=Health)
def live() -> Health:
    return Health(status="ok", database="not checked")


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def ready(request: Request) -> Response | Health:
    engine = request.app.state.web.engine
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        health = Health(status="unavailable", database=f"unreachable: {type(exc).__name__}")
        return JSONResponse(health.model_dump(), status_code=503)
    health = Health(status="ok", database="ok", schema_revision=revision, expected_revision=_head())
    if revision != _head():
        health.status, health.database = "unavailable", "schema not at head"
        return JSONResponse(health.model_dump(), status_code=503)
    return health


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
