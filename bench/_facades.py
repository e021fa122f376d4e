"""What the façade figures (``aws.py``, ``vault.py``) share: the options, the measured
runs (targets interleaved in every repetition), their medians, and the check that every
acknowledged read is one ``read`` row of the tenant's audit trail."""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from _common import base_parser, console, median
from _servers import Server, run_loadgen

OPS = ("GET", "PUT")
Runs = dict[str, dict[str, list[dict[str, Any]]]]


def parse_args(description: str) -> tuple[argparse.Namespace, float, float]:
    """The options, with the duration and warm-up they give (seconds)."""
    parser = base_parser(description)
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    duration = args.duration or (2.0 if args.quick else 5.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    return args, duration, warmup


def measure(args: argparse.Namespace, duration: float, warmup: float,
            targets: Sequence[str], requests: dict[str, dict[str, dict[str, Any]]],
            server_of: Callable[[str], Server], settle: Callable[[str], None]
            ) -> tuple[Runs, Counter[str]]:
    """Every (repetition, op, target) run, targets in a rotating order; and the 2xx
    answers of each ``"<target> <op>"`` (warm-up included)."""
    runs: Runs = {op: {name: [] for name in targets} for op in OPS}
    acknowledged: Counter[str] = Counter()
    for rep in range(args.reps):
        for op in OPS:
            shift = rep % len(targets)
            for name in [*targets[shift:], *targets[:shift]]:
                settle(name)
                spec = {"host": "127.0.0.1", **requests[name][op],
                        "concurrency": args.concurrency, "duration": duration,
                        "warmup": warmup}
                result = run_loadgen(spec, server_of(name))
                result.pop("bodies", None)
                acknowledged[f"{name} {op}"] += int(result["acknowledged_total"])
                runs[op][name].append(result)
                console.print(f"rep {rep + 1} {op:<4}{name:<8}{result['ops_per_s']:9,.0f} req/s"
                              f"  p50 {result['p50_ms']:7.2f} ms"
                              f"  p99 {result['p99_ms']:7.2f} ms"
                              f"  statuses {result['statuses']}")
    return runs, acknowledged


def medians_of(runs: Runs) -> dict[str, dict[str, dict[str, float]]]:
    return {op: {name: {m: median([float(r[m]) if r.get(m) is not None else math.nan
                                   for r in reps])
                        for m in ("ops_per_s", "p50_ms", "p99_ms")}
                 for name, reps in by_target.items()}
            for op, by_target in runs.items()}


def read_rows(base_url: str, admin: dict[str, str], tenant: str) -> Counter[str]:
    """The tenant's ``read`` audit rows, counted by key."""
    reads: Counter[str] = Counter()
    with httpx.Client(base_url=base_url, timeout=120.0, headers=admin) as client:
        cursor = None
        while True:
            params = {"action": "read", "limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = client.get(f"/v1/tenants/{tenant}/audit", params=params).raise_for_status()
            reads.update(item["key"] for item in page.json()["items"])
            cursor = page.json().get("next_cursor")
            if not cursor:
                return reads


def native_versions(base_url: str, admin: dict[str, str], tenant: str, key: str) -> int:
    response = httpx.get(f"{base_url}/v1/tenants/{tenant}/secrets/{key}/versions",
                         headers=admin, timeout=120).raise_for_status()
    return len(response.json()["items"])
