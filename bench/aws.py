"""The AWS Secrets Manager façade: GetSecretValue and PutSecretValue, 16 keep-alive clients.

    python bench/aws.py [--backend sqlite] [--quick] [--reps N]

Three targets, measured interleaved in every repetition by the same load generator
(``_loadgen.py``, its own process), which signs every request with SigV4 at the moment
it sends it, as an AWS SDK does (a fresh ClientRequestToken in every PutSecretValue):

- ``facade``: ``secrets-ledger serve --aws-port``, signed with a writer token's key pair;
- ``native``: the same server's own REST API (GET / PUT of a key), the cost without
  SigV4 and the JSON envelope;
- ``moto``: ``moto_server`` 5.2.5, the usual stand-in for Secrets Manager in tests.

Goals: the façade at least 4x moto and at least 0.7x the native API, on both. The
checks at the end: every acknowledged PutSecretValue is a version of the secret, and
every acknowledged GetSecretValue is one ``read`` row in the tenant's audit trail.
"""

from __future__ import annotations

import json
import os
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
    console_script,
    free_port,
    ledger_server,
    new_bootstrap_token,
    new_master_key,
    wait_views,
)

from secrets_ledger.core.signing_keys import aws_key_pair

NAME = "aws"
TARGETS = ("facade", "native", "moto")
TENANT = "bench"
SECRET = "bench-secret"  # noqa: S105 - a name
KEY = "bench/native"
GOALS = {"moto": 4.0, "native": 0.7}  # facade / baseline, requests per second
REGION = "us-east-1"


def _sm(action: str, body: dict[str, Any], credentials: tuple[str, str]) -> dict[str, Any]:
    return {"method": "POST", "path": "/", "body": json.dumps(body),
            "headers": {"X-Amz-Target": f"secretsmanager.{action}"},
            "sigv4": {"access_key_id": credentials[0], "secret_access_key": credentials[1],
                      "region": REGION, "service": "secretsmanager"}}


def _sm_requests(credentials: tuple[str, str]) -> dict[str, dict[str, Any]]:
    return {"GET": _sm("GetSecretValue", {"SecretId": SECRET}, credentials),
            "PUT": _sm("PutSecretValue", {"SecretId": SECRET, "SecretString": PAYLOAD,
                                          "ClientRequestToken": "{uuid}"}, credentials)}


def _boto(url: str, credentials: tuple[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("secretsmanager", region_name=REGION, endpoint_url=url,
                        aws_access_key_id=credentials[0],
                        aws_secret_access_key=credentials[1],
                        config=Config(retries={"max_attempts": 1}))


def start(space: Any) -> tuple[Server, Server, dict[str, dict[str, dict[str, Any]]],
                               dict[str, Any]]:
    """The ledger (REST and façade) and moto, set up; each target's requests."""
    bootstrap = new_bootstrap_token()
    schema = space.schema("aws_ledger") if space.backend == "postgres" else None
    aws_port = free_port()
    ledger = ledger_server(space.data_dir / "servers", database_url=space.url if schema else None,
                           schema=schema, data_dir=space.data_dir / "ledger",
                           master_key=new_master_key(), bootstrap_token=bootstrap,
                           aws_port=aws_port)
    ledger.start("/healthz")
    admin = {"Authorization": f"Bearer {bootstrap}"}
    with httpx.Client(base_url=ledger.base_url, timeout=60.0, headers=admin) as client:
        client.post("/v1/tenants", json={"tenant": TENANT}).raise_for_status()
        token = client.post(f"/v1/tenants/{TENANT}/tokens",
                            json={"role": "writer"}).raise_for_status().json()["token"]
    credentials = aws_key_pair(token)
    url = f"http://127.0.0.1:{aws_port}"
    _boto(url, credentials).create_secret(Name=SECRET, SecretString=PAYLOAD)
    auth = {"Authorization": f"Bearer {token}"}
    put = {**auth, "Content-Type": "application/json"}
    path = f"/v1/tenants/{TENANT}/secrets/{KEY}"
    httpx.put(ledger.base_url + path, json={"value": PAYLOAD}, headers=put).raise_for_status()
    moto_port = free_port()
    moto = Server("moto", [console_script("moto_server"), "-H", "127.0.0.1", "-p",
                           str(moto_port)], dict(os.environ), moto_port,
                  space.data_dir / "servers")
    moto.start("/moto-api/")
    fake = ("AKIAIOSFODNN7EXAMPLE", "moto-accepts-any-secret")
    _boto(moto.base_url, fake).create_secret(Name=SECRET, SecretString=PAYLOAD)
    requests = {
        "facade": {op: {"port": aws_port, **spec}
                   for op, spec in _sm_requests(credentials).items()},
        "native": {"GET": {"port": ledger.port, "method": "GET", "path": path,
                           "headers": auth},
                   "PUT": {"port": ledger.port, "method": "PUT", "path": path,
                           "headers": put, "body": json.dumps({"value": PAYLOAD})}},
        "moto": {op: {"port": moto_port, **spec} for op, spec in _sm_requests(fake).items()},
    }
    return ledger, moto, requests, {"token": token, "credentials": credentials, "url": url,
                                    "admin": admin}


def check(ledger: Server, setup: dict[str, Any], acknowledged: Counter[str]) -> dict[str, Any]:
    """Every acknowledged write is a version, every acknowledged read an audit row."""
    wait_views(ledger)
    versions = _boto(setup["url"], setup["credentials"]).list_secret_version_ids(
        SecretId=SECRET, IncludeDeprecated=True, MaxResults=100)["Versions"]
    reads = read_rows(ledger.base_url, setup["admin"], TENANT)
    out = {"facade_versions": len(versions), "facade_puts": acknowledged["facade PUT"] + 1,
           "facade_read_rows": reads[f"sm:{REGION}:{SECRET}"],
           "facade_gets": acknowledged["facade GET"],
           "native_versions": native_versions(ledger.base_url, setup["admin"], TENANT, KEY),
           "native_puts": acknowledged["native PUT"] + 1,
           "native_read_rows": reads[KEY], "native_gets": acknowledged["native GET"]}
    out["ok"] = (out["facade_versions"] == out["facade_puts"]
                 and out["facade_read_rows"] == out["facade_gets"]
                 and out["native_versions"] == out["native_puts"]
                 and out["native_read_rows"] == out["native_gets"])
    return out


def main() -> int:
    args, duration, warmup = parse_args(__doc__.splitlines()[0])
    with workspace(args.backend) as space:
        console.print(f"[bold]{NAME}[/bold]: backend={args.backend} duration={duration}s "
                      f"reps={args.reps} concurrency={args.concurrency}")
        ledger, moto, requests, setup = start(space)
        try:
            runs, acknowledged = measure(
                args, duration, warmup, TARGETS, requests,
                lambda name: moto if name == "moto" else ledger,
                lambda name: None if name == "moto" else wait_views(ledger) and None)
            checks = check(ledger, setup, acknowledged)
        finally:
            ledger.stop()
            moto.stop()

    medians = medians_of(runs)
    rows, ratio_rows, goals_met = [], [], {}
    for op in OPS:
        for name in TARGETS:
            m = medians[op][name]
            rows.append([op if name == TARGETS[0] else "", name, fmt(m["ops_per_s"]),
                         " / ".join(fmt(r["ops_per_s"]) for r in runs[op][name]),
                         fmt(m["p50_ms"], 2), fmt(m["p99_ms"], 2)])
        for base, goal in GOALS.items():
            value = ratio(medians[op]["facade"]["ops_per_s"], medians[op][base]["ops_per_s"])
            goals_met[f"{op} facade/{base}"] = value >= goal
            ratio_rows.append([op, f"facade/{base}", fmt_ratio(value), f">= {goal}",
                               "met" if value >= goal else "[red]NOT met[/red]"])
    print_table(f"AWS façade - {args.concurrency} keep-alive clients, SigV4 signed"
                f" ({args.backend}, median of {args.reps})",
                ["op", "target", "req/s", "each run", "p50 ms", "p99 ms"], rows)
    print_table("The façade as a multiple of each baseline (req/s medians)",
                ["op", "ratio", "value", "goal", ""], ratio_rows)
    print_table("Correctness", ["ok", "detail"], [[
        "yes" if checks["ok"] else "[red]NO[/red]",
        ", ".join(f"{k}={v}" for k, v in checks.items() if k != "ok")]])
    suffix = "" if args.backend == "postgres" else f"_{args.backend}"
    write_json(NAME + suffix, {
        "config": {"backend": args.backend, "duration_s": duration, "warmup_s": warmup,
                   "reps": args.reps, "concurrency": args.concurrency, "goals": GOALS,
                   "payload_bytes": len(PAYLOAD)},
        "runs": runs, "medians": medians, "goals_met": goals_met, "checks": checks,
        "ok": checks["ok"]}, args.out)
    return verdict(checks["ok"])


if __name__ == "__main__":
    run_benchmark(main)
