"""Health, readiness and Prometheus metrics (no auth; the bind address is the operator's)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from secrets_ledger.api.rest.problems import problem

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


READINESS_SECONDS = 2.0
"""How long /readyz waits for the store's answer: while a failover is under way the
drivers retry for longer, and a probe must hear "not ready" in time."""


class StoreProbe:
    """Asks the projection lag in a thread of its own, one question at a time."""

    def __init__(self, lag: Callable[[], int]) -> None:
        self.lag = lag
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="readiness")
        self.asked: Future[int] | None = None

    def answer(self) -> int:
        """The lag; TimeoutError while the store does not answer (the question asked
        before is still pending, or this one took too long)."""
        if self.asked is not None and not self.asked.done():
            raise TimeoutError
        self.asked = self.thread.submit(self.lag)
        return self.asked.result(timeout=READINESS_SECONDS)


@router.get("/readyz", responses={503: {"description": "storage down or projections behind"}})
def readyz(request: Request) -> Response:
    state = request.app.state
    if getattr(state, "store_probe", None) is None:
        state.store_probe = StoreProbe(state.projection_lag)
    try:
        lag = state.store_probe.answer()
    except TimeoutError:
        return problem(503, "unavailable", "storage is not answering")
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
