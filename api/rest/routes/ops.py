"""Health, readiness and Prometheus metrics (no auth; the bind address is the operator's)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from secrets_ledger.api.rest.problems import problem

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "storage down or projections behind"}})
def readyz(request: Request) -> Response:
    try:
        lag: int = request.app.state.projection_lag()
    except Exception:
        return problem(503, "unavailable", "storage is not reachable")
    if lag > request.app.state.readiness_max_lag:
        return problem(503, "unavailable", "projections are behind the event store", lag=lag)
    return Response(f'{{"status": "ready", "lag": {lag}}}', media_type="application/json")


@router.get("/metrics")
def metrics(request: Request) -> Response:
    telemetry = request.app.state.telemetry
    try:
        telemetry.projection_lag.set(request.app.state.projection_lag())
    except Exception:
        telemetry.projection_lag.set(-1)
    load = request.app.state.ledger.load
    for name, value in (("queued_jobs", load.jobs), ("queued_bytes", load.bytes),
                        ("shed_requests", load.shed), ("abandoned_requests", load.abandoned)):
        telemetry.queue[name].set(value)
    for name, value in request.app.state.ledger.changes.counts()._asdict().items():
        telemetry.feed[name].set(value)
    return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)
