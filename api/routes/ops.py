"""Health, readiness and Prometheus metrics (no auth; the bind address is the operator's)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from secrets_ledger.api.problems import problem
from secrets_ledger.projections.projector import view_positions
from secrets_ledger.service.ledger import Ledger

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def projection_lag(ledger: Ledger) -> int:
    head = ledger.storage.source.max_position()
    positions = view_positions(ledger.db)
    return max(0, head - min(positions.values(), default=0))


@router.get("/readyz", responses={503: {"description": "storage down or projections behind"}})
def readyz(request: Request) -> Response:
    ledger: Ledger = request.app.state.ledger
    try:
        lag = projection_lag(ledger)
    except Exception:
        return problem(503, "unavailable", "storage is not reachable")
    if lag > ledger.storage.settings.readiness_max_lag:
        return problem(503, "unavailable", "projections are behind the event store", lag=lag)
    return Response(f'{{"status": "ready", "lag": {lag}}}', media_type="application/json")


@router.get("/metrics")
def metrics(request: Request) -> Response:
    telemetry = request.app.state.telemetry
    try:
        telemetry.projection_lag.set(projection_lag(request.app.state.ledger))
    except Exception:
        telemetry.projection_lag.set(-1)
    return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)
