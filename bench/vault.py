"""The Vault KV v2 façade: reads and writes of one key, 16 keep-alive clients.

    python bench/vault.py [--backend sqlite] [--quick] [--reps N]

Two targets on one server, measured interleaved in every repetition by the same load
generator (``_loadgen.py``, its own process):

- ``vault``: ``GET /v1/kvv2/data/<key>`` and ``POST /v1/kvv2/data/<key>`` through
  ``secrets-ledger serve --vault-port``, with a writer token in ``X-Vault-Token``;
- ``native``: the same server's ``GET`` / ``PUT /v1/tenants/<t>/secrets/<key>``.

Goal: the façade at least 0.8x the native API for both. The checks at the end: every
acknowledged write is a version of its key, and every acknowledged read is one ``read``
row in the tenant's audit trail.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
from _common import (
    PAYLOAD,
    console,
    fmt,
    fmt_ratio,
    print_table,
    ratio,
    run_benchmark,
    verdict,
    workspace,
    write_json,
)
from _facades import OPS, measure, medians_of, native_versions, parse_args, read_rows
from _servers import (
    Server,
    free_port,
    ledger_server,
    new_bootstrap_token,
    new_master_key,
    wait_views,
)

NAME = "vault"
TARGETS = ("vault", "native")
TENANT = "bench"
KEY = "bench/key"
GOAL = 0.8


def start(space: Any) -> tuple[Server, dict[str, dict[str, dict[str, Any]]], dict[str, Any]]:
    bootstrap = new_bootstrap_token()
    schema = space.schema("vault_ledger") if space.backend == "postgres" else None
    ledger = ledger_server(space.data_dir / "servers", database_url=space.url if schema else None,
                           schema=schema, data_dir=space.data_dir / "ledger",
                           master_key=new_master_key(), bootstrap_token=bootstrap)
    vault_port = free_port()
    ledger.argv += ["--vault-port", str(vault_port)]
    ledger.start("/healthz")
    admin = {"Authorization": f"Bearer {bootstrap}"}
    with httpx.Client(base_url=ledger.base_url, timeout=60.0, headers=admin) as client:
        client.post("/v1/tenants", json={"tenant": TENANT}).raise_for_status()
        token = client.post(f"/v1/tenants/{TENANT}/tokens",
                            json={"role": "writer"}).raise_for_status().json()["token"]
    vault = {"X-Vault-Token": token}
    url = f"http://127.0.0.1:{vault_port}/v1/"
    httpx.post(url + "sys/mounts/kvv2", json={"type": "kv", "options": {"version": "2"}},
               headers=vault).raise_for_status()
    body = json.dumps({"data": {"value": PAYLOAD}})
    httpx.post(url + f"kvv2/data/{KEY}", content=body, headers=vault).raise_for_status()
    auth = {"Authorization": f"Bearer {token}"}
    put = {**auth, "Content-Type": "application/json"}
    path = f"/v1/tenants/{TENANT}/secrets/{KEY}"
    httpx.put(ledger.base_url + path, json={"value": PAYLOAD}, headers=put).raise_for_status()
    requests = {
        "vault": {"GET": {"port": vault_port, "method": "GET", "path": f"/v1/kvv2/data/{KEY}",
                          "headers": vault},
                  "PUT": {"port": vault_port, "method": "POST",
                          "path": f"/v1/kvv2/data/{KEY}", "body": body,
                          "headers": {**vault, "Content-Type": "application/json"}}},
        "native": {"GET": {"port": ledger.port, "method": "GET", "path": path, "headers": auth},
                   "PUT": {"port": ledger.port, "method": "PUT", "path": path, "headers": put,
                           "body": json.dumps({"value": PAYLOAD})}},
    }
    return ledger, requests, {"url": url, "vault": vault, "admin": admin}


def check(ledger: Server, setup: dict[str, Any], acknowledged: Counter[str]) -> dict[str, Any]:
    wait_views(ledger)
    meta = httpx.get(setup["url"] + f"kvv2/metadata/{KEY}", headers=setup["vault"],
                     timeout=120).raise_for_status().json()["data"]
    reads = read_rows(ledger.base_url, setup["admin"], TENANT)
    out = {"vault_versions": meta["current_version"], "vault_puts": acknowledged["vault PUT"] + 1,
           "vault_read_rows": sum(n for key, n in reads.items() if key != KEY),
           "vault_gets": acknowledged["vault GET"],
           "native_versions": native_versions(ledger.base_url, setup["admin"], TENANT, KEY),
           "native_puts": acknowledged["native PUT"] + 1,
           "native_read_rows": reads[KEY], "native_gets": acknowledged["native GET"]}
    out["ok"] = (out["vault_versions"] == out["vault_puts"]
                 and out["vault_read_rows"] == out["vault_gets"]
                 and out["native_versions"] == out["native_puts"]
                 and out["native_read_rows"] == out["native_gets"])
    return out


def main() -> int:
    args, duration, warmup = parse_args(__doc__.splitlines()[0])
    with workspace(args.backend) as space:
        console.print(f"[bold]{NAME}[/bold]: backend={args.backend} duration={duration}s "
                      f"reps={args.reps} concurrency={args.concurrency}")
        ledger, requests, setup = start(space)
        try:
            runs, acknowledged = measure(args, duration, warmup, TARGETS, requests,
                                         lambda name: ledger,
                                         lambda name: wait_views(ledger) and None)
            checks = check(ledger, setup, acknowledged)
        finally:
            ledger.stop()
    medians = medians_of(runs)
    rows, goals_met = [], {}
    for op in OPS:
        value = ratio(medians[op]["vault"]["ops_per_s"], medians[op]["native"]["ops_per_s"])
        goals_met[op] = value >= GOAL
        for name in TARGETS:
            m = medians[op][name]
            rows.append([op if name == TARGETS[0] else "", name, fmt(m["ops_per_s"]),
                         " / ".join(fmt(r["ops_per_s"]) for r in runs[op][name]),
                         fmt(m["p50_ms"], 2), fmt(m["p99_ms"], 2),
                         fmt_ratio(value) if name == "vault" else ""])
    print_table(f"Vault KV v2 façade - {args.concurrency} keep-alive clients ({args.backend},"
                f" median of {args.reps}); goal vault/native >= {GOAL}",
                ["op", "target", "req/s", "each run", "p50 ms", "p99 ms", "vault/native"], rows)
    print_table("Correctness", ["ok", "detail"], [[
        "yes" if checks["ok"] else "[red]NO[/red]",
        ", ".join(f"{k}={v}" for k, v in checks.items() if k != "ok")]])
    suffix = "" if args.backend == "postgres" else f"_{args.backend}"
    write_json(NAME + suffix, {
        "config": {"backend": args.backend, "duration_s": duration, "warmup_s": warmup,
                   "reps": args.reps, "concurrency": args.concurrency, "goal": GOAL},
        "runs": runs, "medians": medians, "goals_met": goals_met, "checks": checks,
        "ok": checks["ok"]}, args.out)
    return verdict(checks["ok"])


if __name__ == "__main__":
    run_benchmark(main)
