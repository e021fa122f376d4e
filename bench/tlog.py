"""Figure 8: the transparency logs (issue 16): proofs, reads with proofs, the verifier,
and what maintaining the logs costs the writers.

    /tmp/venv/bin/python bench/tlog.py [--quick] [--backend sqlite]

1. proofs, server-side: ``LogProofs.inclusion`` / ``.consistency`` (one statement for
   the stored subtrees, and the hashing) on a tenant log of 100 leaves and one of
   1,000,000 (``--leaves``), random indexes and sizes, the two logs interleaved, each
   proof timed alone, after a warm-up that fills the cache of upper subtrees (its first
   proofs: the cold figure); median and p99, and the ratio of the two logs' medians;
2. a read with its proof over real HTTP (``secrets-ledger serve``): one client, GET
   ``…/secrets/k`` and GET ``…?proof=true`` interleaved; p50 of each and the overhead;
3. the verifier: ``verify_read`` of one such answer (the value's commitment, the leaf
   recomputed, the inclusion proof, the checkpoint's Ed25519 signature), in Python;
4. writes: 16 writers over 16 tenants through the core (as ``domain_writes.py``), the
   ledger as it is against the same ledger whose writer stores no leaves (its appender
   replaced by one that stages nothing: the build without the logs), repetitions
   interleaved; during the ledger's runs a server's checkpoint round runs every 0.5 s,
   and the lag from a write's acknowledgement to a signed checkpoint covering it is
   sampled.

Correctness: every proof of part 1 verifies against the log's root; every answer of
part 2 verifies; the ledger's writes leave every log equal to its records (``verify``).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import httpx
from _common import (
    base_parser,
    console,
    fmt,
    median,
    percentile,
    print_table,
    ratio,
    run_benchmark,
    run_timed_async,
    verdict,
    workspace,
    write_json,
)
from _servers import ledger_server, new_bootstrap_token, wait_views
from domain_writes import LedgerSystem

NAME = "tlog"


def build_log(rt: Any, tenant_id: str, leaves: int) -> bytes:
    """A log of ``leaves`` synthetic leaves stored as the writer stores them; its root."""
    from secrets_ledger.adapters.sql.tlog import append_rows
    from secrets_ledger.domain.merkle_log import LogHead

    head, batch = LogHead(), 20_000
    for start in range(0, leaves, batch):
        rows = []
        for index in range(start, min(leaves, start + batch)):
            rows.append((tenant_id, index, "", index + 1,
                         head.append(b"E" + index.to_bytes(32, "big"))))
        with rt.storage.log_rows.db.transaction() as cur:
            append_rows(cur, rows)
    return head.root


def time_proofs(rt: Any, logs: dict[str, tuple[str, int, bytes]], samples: int
                ) -> dict[str, Any]:
    """Proofs of random leaves and sizes in each log, the logs interleaved sample by
    sample through one ``LogProofs`` (as a server has): first a warm-up, in which its
    cache of upper subtrees fills as it does on a busy log (its first ``samples`` proofs
    are the cold figure), then ``samples`` proofs of each log timed and verified."""
    from secrets_ledger.core.log_proofs import CACHED_WIDTH, LogProofs
    from secrets_ledger.verifier import leaf_hash, verify_consistency, verify_inclusion

    proofs, rng = LogProofs(rt.storage.log_rows), random.Random(samples)
    largest = max(size for _, size, _ in logs.values())
    warm_up = max(samples, min(40_000, 5 * largest // CACHED_WIDTH))
    times: dict[tuple[str, str], list[float]] = {
        (name, what): [] for name in logs for what in ("cold", "inclusion", "consistency")}
    for sample in range(warm_up + samples):
        timed = sample >= warm_up
        for name, (tenant_id, size, root) in logs.items():
            index = rng.randrange(size)
            started = time.perf_counter()
            path = proofs.inclusion(tenant_id, index, size)
            took = (time.perf_counter() - started) * 1000
            times[name, "inclusion" if timed else "cold"].append(took)
            leaf = leaf_hash(b"E" + index.to_bytes(32, "big"))
            verify_inclusion(index, size, leaf, path, root)
            old = rng.randrange(1, size + 1)
            started = time.perf_counter()
            path = proofs.consistency(tenant_id, old, size)
            took = (time.perf_counter() - started) * 1000
            if timed:
                times[name, "consistency"].append(took)
                verify_consistency(old, size, path, proofs.root(tenant_id, old), root)
    return {name: {"leaves": size, "warm_up_proofs": warm_up,
                   "inclusion_cold_p50_ms": median(times[name, "cold"][:samples]),
                   "inclusion_p50_ms": median(times[name, "inclusion"]),
                   "inclusion_p99_ms": percentile(times[name, "inclusion"], 99),
                   "consistency_p50_ms": median(times[name, "consistency"]),
                   "consistency_p99_ms": percentile(times[name, "consistency"], 99),
                   "ok": True}  # every proof verified above (a failure raises)
            for name, (_, size, _) in logs.items()}


def server_settings(space: Any) -> tuple[Any, str | None]:
    """The storage the HTTP server of parts 1 and 2 serves (built first, then served)."""
    schema = space.schema("tlh") if space.backend == "postgres" else None
    return space.data_dir / "tlh-data", schema


def part_proofs(space: Any, big: int, samples: int) -> dict[str, Any]:
    """Logs of 100 and ``big`` leaves in the server's store (as tenants ``small`` and
    ``big``: a log alone, no records behind it), and their proofs timed in the core."""
    from secrets_ledger.core.settings import Settings
    from secrets_ledger.domain.tenant import tenant_id_for
    from secrets_ledger.runtime import LedgerRuntime

    data_dir, schema = server_settings(space)
    options: dict[str, Any] = {"data_dir": data_dir}
    if schema is not None:
        options.update(database_url=space.url, database_schema=schema)
    rt = LedgerRuntime(Settings(**options), follow=False)
    try:
        logs = {}
        for name, size in (("small", 100), ("big", big)):
            tenant_id = str(tenant_id_for(name))
            started = time.perf_counter()
            logs[name] = tenant_id, size, build_log(rt, tenant_id, size)
            console.print(f"log of {size:,} leaves built in {time.perf_counter() - started:.1f}s")
        return time_proofs(rt, logs, samples)
    finally:
        rt.close()


def timed_get(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response


def part_reads(space: Any, requests: int, big: int) -> dict[str, Any]:
    """Over HTTP, one client, interleaved: GET and GET?proof=true, and the proofs of
    the two logs of part 1; then the verifier's time on the answers."""
    from secrets_ledger.verifier import Trusted, parse_verifier_key, verify_read

    data_dir, schema = server_settings(space)
    token = new_bootstrap_token()
    server = ledger_server(space.data_dir / "tlh", database_url=(
        space.url if space.backend == "postgres" else None), schema=schema,
        data_dir=data_dir, master_key=None, bootstrap_token=token)
    server.start("/healthz")
    rng = random.Random(7)
    try:
        with httpx.Client(base_url=server.base_url,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            client.post("/v1/tenants", json={"tenant": "bench"}).raise_for_status()
            client.put("/v1/tenants/bench/secrets/k", json={"value": {"api_key": "x" * 40}}
                       ).raise_for_status()
            wait_views(server)
            keys = client.get("/v1/log-key").json()
            trusted = Trusted([parse_verifier_key(k) for k in keys["log_keys"]])
            times: dict[str, list[float]] = {}
            answers = []
            for n in range(requests + 50):
                calls = [("get", "/v1/tenants/bench/secrets/k", {}),
                         ("get_proof", "/v1/tenants/bench/secrets/k", {"proof": "true"})]
                for name, size in (("small", 100), ("big", big)):
                    calls.append((f"inclusion_{name}", f"/v1/tenants/{name}/log/inclusion",
                                  {"index": rng.randrange(size), "size": size}))
                    calls.append((f"consistency_{name}", f"/v1/tenants/{name}/log/consistency",
                                  {"old": rng.randrange(1, size + 1), "size": size}))
                for name, path, params in calls:
                    elapsed, response = timed_get(client, path, params)
                    if n >= 50:  # the first ones warm up (and sign the first checkpoint)
                        times.setdefault(name, []).append(elapsed)
                        if name == "get_proof":
                            answers.append(response.json())
        verify_ms = []
        for answer in answers[:2000]:
            started = time.perf_counter()
            verify_read("bench", answer, trusted, keys["origin_prefix"])
            verify_ms.append((time.perf_counter() - started) * 1000)
        out: dict[str, Any] = {f"{name}_p50_ms": median(values)
                               for name, values in times.items()}
        out.update({f"{name}_p99_ms": percentile(values, 99) for name, values in times.items()})
        out.update(overhead_p50_ms=out["get_proof_p50_ms"] - out["get_p50_ms"],
                   verify_read_p50_ms=median(verify_ms), verified=len(verify_ms),
                   ok=len(verify_ms) == min(2000, len(answers)))
        return out
    finally:
        server.stop()


class WithoutLog:
    """The writer's appender of the build without the logs: it stages nothing."""

    def __init__(self) -> None:
        from secrets_ledger.adapters.tlog_appender import StagedLog

        self.staged = StagedLog

    def stage(self, events: Any) -> Any:
        return self.staged()

    def stored(self, staged: Any) -> None:
        pass

    def drop(self, tenant_ids: Any) -> None:
        pass


def checkpoint_lag(system: LedgerSystem, names: list[str], stop: threading.Event,
                   lags: list[float]) -> None:
    """A server's checkpoint round every 0.5 s; samples, every 50 ms, one tenant log's
    head, and how long until a stored checkpoint covers it."""
    from secrets_ledger.domain.tenant import tenant_id_for

    rows, checkpointer = system.rt.storage.log_rows, system.rt.ledger.checkpointer
    pending: list[tuple[str, int, float]] = []

    def rounds() -> None:
        while not stop.wait(system.rt.settings.checkpoint_interval):
            checkpointer.sign_round()

    signer = threading.Thread(target=rounds, daemon=True)
    signer.start()
    tenants = [str(tenant_id_for(name)) for name in names]
    while not stop.wait(0.2):
        now = time.monotonic()
        for tenant_id, size, seen in list(pending):
            checkpoint = rows.checkpoint(tenant_id)
            if checkpoint is not None and checkpoint.size >= size:
                lags.append(now - seen)
                pending.remove((tenant_id, size, seen))
        tenant_id = random.choice(tenants)
        pending.append((tenant_id, rows.log_size(tenant_id), now))
    signer.join()


def part_writes(space: Any, duration: float, reps: int) -> dict[str, Any]:
    systems = {"with log": LedgerSystem(space, None, True, "tlw"),
               "without log": LedgerSystem(space, None, True, "tln")}
    systems["without log"].rt.storage.streams.log = WithoutLog()
    runs: dict[str, list[float]] = {name: [] for name in systems}
    lags: list[float] = []
    try:
        for rep in range(reps):
            for name, system in systems.items():
                tenants = system.prepare(f"r{rep}-{name.replace(' ', '-')}", 16)
                stop = threading.Event()
                sampler = threading.Thread(target=checkpoint_lag,
                                           args=(system, tenants, stop, lags))
                if name == "with log":
                    sampler.start()
                run = run_timed_async(16, duration, system.op(tenants))
                stop.set()
                if name == "with log":
                    sampler.join()
                system.settle()
                runs[name].append(run.rate)
                console.print(f"rep {rep + 1} {name:<12} {run.rate:9,.0f} writes/s")
        checks = {name: system.check() for name, system in systems.items()}
        from secrets_ledger.core.principals import Principal

        scan = asyncio.run(systems["with log"].rt.ledger.history.verify_all(
            Principal.operator()))
    finally:
        for system in systems.values():
            system.close()
    with_log, without = median(runs["with log"]), median(runs["without log"])
    return {"runs": runs, "with_log_writes_per_s": with_log,
            "without_log_writes_per_s": without, "ratio": ratio(with_log, without),
            "checkpoint_lag_p50_s": median(lags) if lags else None,
            "checkpoint_lag_max_s": max(lags) if lags else None, "lag_samples": len(lags),
            "checks": checks, "logs": scan.logs.as_dict(),
            "ok": all(c["ok"] for c in checks.values()) and scan.logs.ok}


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=None,
                        help="the large log (default 1,000,000; --quick 100,000)")
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--only", choices=("writes",), help="diagnostic: part 4 alone")
    args = parser.parse_args()
    big = args.leaves or (100_000 if args.quick else 1_000_000)
    duration = args.duration or (1.0 if args.quick else 3.0)
    with workspace(args.backend) as space:
        console.print(f"[bold]{NAME}[/bold]: backend={args.backend} leaves={big:,}")
        if args.only == "writes":
            writes = part_writes(space, duration, args.reps)
            console.print(f"writes with/without log: {writes['ratio']:.2f}x"
                          f" ({writes['with_log_writes_per_s']:,.0f} /"
                          f" {writes['without_log_writes_per_s']:,.0f} writes/s; checkpoint"
                          f" lag p50 {writes['checkpoint_lag_p50_s']:.2f} s,"
                          f" max {writes['checkpoint_lag_max_s']:.2f} s)")
            suffix = "" if args.backend == "postgres" else f"_{args.backend}"
            write_json(f"{NAME}_writes{suffix}", {
                "config": {"backend": args.backend, "duration_s": duration, "reps": args.reps},
                "writes": writes, "ok": writes["ok"]}, args.out)
            return verdict(writes["ok"])
        proofs = part_proofs(space, big, 300 if args.quick else 2000)
        reads = part_reads(space, 300 if args.quick else 2000, big)
        writes = part_writes(space, duration, args.reps)
    small, large = proofs["small"], proofs["big"]
    rows = []
    for what in ("inclusion", "consistency"):
        for label, core, http in (("100", small, "small"), (f"{big:,}", large, "big")):
            rows.append([f"{what} proof, {label} leaves: core / HTTP request",
                         f"{fmt(core[f'{what}_p50_ms'], 3)} / "
                         f"{fmt(reads[f'{what}_{http}_p50_ms'], 2)}",
                         f"{fmt(core[f'{what}_p99_ms'], 3)} / "
                         f"{fmt(reads[f'{what}_{http}_p99_ms'], 2)}"])
    rows.append([f"inclusion proof, {big:,} leaves, cold cache: core",
                 fmt(large["inclusion_cold_p50_ms"], 3), "-"])
    rows += [["GET (HTTP request)", fmt(reads["get_p50_ms"], 2), fmt(reads["get_p99_ms"], 2)],
             ["GET ?proof=true (HTTP request)", fmt(reads["get_proof_p50_ms"], 2),
              fmt(reads["get_proof_p99_ms"], 2)],
             ["verifier: one read's proof and signature", fmt(reads["verify_read_p50_ms"], 3),
              "-"]]
    print_table(f"Figure 8 - transparency log ({args.backend}), ms", ["what", "p50", "p99"],
                rows)
    ratios = {
        "inclusion big/small, core": ratio(large["inclusion_p50_ms"],
                                           small["inclusion_p50_ms"]),
        "consistency big/small, core": ratio(large["consistency_p50_ms"],
                                             small["consistency_p50_ms"]),
        "inclusion big/small, HTTP": ratio(reads["inclusion_big_p50_ms"],
                                           reads["inclusion_small_p50_ms"]),
        "consistency big/small, HTTP": ratio(reads["consistency_big_p50_ms"],
                                             reads["consistency_small_p50_ms"]),
        "writes with/without log": writes["ratio"],
    }
    lag = writes["checkpoint_lag_p50_s"], writes["checkpoint_lag_max_s"]
    print_table("Figure 8 - ratios and writes", ["what", "value"], [
        *[[k, f"{v:.2f}x"] for k, v in ratios.items()],
        ["GET proof overhead p50 ms", fmt(reads["overhead_p50_ms"], 2)],
        ["writes/s with log / without", f"{writes['with_log_writes_per_s']:,.0f} /"
                                        f" {writes['without_log_writes_per_s']:,.0f}"],
        ["checkpoint lag p50 / max s", "-" if lag[0] is None else
         f"{lag[0]:.2f} / {lag[1]:.2f}"]])
    ok = all(part["ok"] for part in (small, large, reads, writes))
    suffix = "" if args.backend == "postgres" else f"_{args.backend}"
    write_json(NAME + suffix, {"config": {"backend": args.backend, "leaves": big,
                                          "duration_s": duration, "reps": args.reps},
                               "proofs": proofs, "reads": reads, "writes": writes,
                               "ratios": ratios, "ok": ok}, args.out)
    return verdict(ok)


if __name__ == "__main__":
    run_benchmark(main)
