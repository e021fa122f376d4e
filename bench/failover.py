"""The failover drill: acknowledged writes through a PostgreSQL primary's death.

Starts a pg_auto_failover monitor and two PostgreSQL nodes on loopback (``_pgaf.py``;
installs the Debian packages if missing), then ``secrets-ledger serve`` on the pair's
multi-host URL, and drives HTTP writes (each a new key, each with its own
Idempotency-Key, retried by its client until acknowledged) and reads of what was
acknowledged, through two scenarios:

- ``postmaster``: the primary's postmaster is killed (its keeper stays and restarts it;
  the monitor fails over to the secondary, unless the restart comes first);
- ``node``: the whole primary node is killed (keeper and PostgreSQL), then restarted to
  rejoin as secondary.

Per scenario it prints acknowledged writes, lost ones (acknowledged but not stored with
the acknowledged version; must be 0), those applied twice (a key with a second version;
must be 0), the longest time without an acknowledged write, reads that saw another
value, acknowledged writes a change-feed subscriber (long polls, resumed from its cursor)
missed or saw twice, how long ``/readyz`` said not ready, and whether ``verify`` passes
(these two reported, not yet required: see README "Deployments"). The last line sums both:
``failover: lost=N duplicated=M``. Exit status 0 only when both are 0 and every check
passed. Everything it started is stopped and removed.

    python bench/failover.py [--writers 8] [--settle 4] [--read-from-standby]
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pgaf import AutoFailoverPair, ensure_installed
from _servers import ledger_server, new_bootstrap_token, new_master_key

TENANT = "drill"


@dataclass
class Tally:
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> value
    ack_times: list[float] = field(default_factory=list)
    failed_attempts: int = 0
    reads: int = 0
    bad_reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Writers:
    """Threads that each write new keys until stopped; a write is retried with the same
    Idempotency-Key until the server acknowledges it, as a careful client would."""

    def __init__(self, base_url: str, token: str, count: int, scenario: str) -> None:
        self.base_url, self.token, self.scenario = base_url, token, scenario
        self.tally = Tally()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(n,), daemon=True)
                        for n in range(count)]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _write(self, writer: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=60.0) as client:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                key = f"{self.scenario}/w{writer}/{n}"
                value = uuid.uuid4().hex
                self._until_acknowledged(client, key, value)
                self._read_back(client)

    def _until_acknowledged(self, client: httpx.Client, key: str, value: str) -> None:
        idempotency = uuid.uuid4().hex
        while True:  # even once stopped: a write begun is seen through
            try:
                response = client.put(f"/v1/tenants/{TENANT}/secrets/{key}",
                                      json={"value": value},
                                      headers={"Idempotency-Key": idempotency})
                if response.status_code in (200, 201):
                    assert response.json()["version"] == 1, response.text
                    with self.tally.lock:
                        self.tally.acknowledged[key] = value
                        self.tally.ack_times.append(time.monotonic())
                    return
            except httpx.HTTPError:
                pass
            with self.tally.lock:
                self.tally.failed_attempts += 1
            time.sleep(0.05)

    def _read_back(self, client: httpx.Client) -> None:
        with self.tally.lock:
            if not self.tally.acknowledged:
                return
            key, value = random.choice(list(self.tally.acknowledged.items()))
        try:
            response = client.get(f"/v1/tenants/{TENANT}/secrets/{key}")
        except httpx.HTTPError:
            return  # unavailable during the outage: not a wrong answer
        with self.tally.lock:
            self.tally.reads += 1
            if response.status_code == 200 and response.json()["value"] != value:
                self.tally.bad_reads += 1  # a different value: never acceptable
            elif response.status_code not in (200, 503):
                self.tally.bad_reads += 1


class Readiness:
    """Polls /readyz every 0.2 s: the seconds it said "not ready" (or did not answer)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.not_ready_s = 0.0
        self.last: int | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Readiness:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _poll(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=3.0) as client:
            while not self.stop.wait(0.2):
                started = time.monotonic()
                try:
                    self.last = client.get("/readyz").status_code
                except httpx.HTTPError:
                    self.last = None
                if self.last != 200:
                    self.not_ready_s += 0.2 + time.monotonic() - started


class Follower:
    """Follows the scenario's writes on the change feed (long polls, resumed from the last
    cursor after any error), as a subscriber would through the failover."""

    def __init__(self, base_url: str, token: str, prefix: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30.0,
                                   headers={"Authorization": f"Bearer {token}"})
        self.params = {"prefix": prefix, "action": "write", "wait": "2", "limit": "1000"}
        self.cursor = "0"
        self.seen: list[str] = []  # keys written, in feed order
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> Follower:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)

    def _follow(self) -> None:
        while not self.stop.is_set():
            self.poll()

    def poll(self) -> int:
        """One long poll; how many changes it brought (0 on an error: retried later)."""
        try:
            response = self.client.get(f"/v1/tenants/{TENANT}/changes",
                                       params={**self.params, "after": self.cursor})
        except httpx.HTTPError:
            time.sleep(0.2)
            return 0
        if response.status_code != 200:
            time.sleep(0.2)
            return 0
        page = response.json()
        self.seen += [change["key"] for change in page["items"]]
        self.cursor = page["cursor"]
        return len(page["items"])

    def check(self, acknowledged: dict[str, str]) -> tuple[int, int]:
        """(missed, seen twice): every acknowledged write must be in the feed once."""
        self.params["wait"] = "0"
        while self.poll():  # what is left after the writers stopped
            pass
        self.client.close()
        missed = sum(1 for key in acknowledged if key not in set(self.seen))
        return missed, len(self.seen) - len(set(self.seen))


def longest_gap(times: list[float], since: float) -> float:
    """The longest time without an acknowledged write, from the last one before ``since``."""
    moments = sorted(times)
    start = max((t for t in moments if t <= since), default=since)
    after = [t for t in moments if t > since]
    return max((b - a for a, b in itertools.pairwise([start, *after])), default=0.0)


def check(client: httpx.Client, tally: Tally) -> tuple[int, int]:
    """(lost, duplicated) among the acknowledged writes, read after the drill."""
    lost = duplicated = 0
    for key, value in tally.acknowledged.items():
        versions = client.get(f"/v1/tenants/{TENANT}/secrets/{key}/versions")
        if versions.status_code != 200:
            lost += 1
            continue
        if len(versions.json()["items"]) != 1:
            duplicated += 1
        read = client.get(f"/v1/tenants/{TENANT}/secrets/{key}")
        if read.status_code != 200 or read.json()["value"] != value:
            lost += 1
    return lost, duplicated


def scenario(pair: AutoFailoverPair, base_url: str, admin: httpx.Client,
             tokens: dict[str, str], name: str, writers: int, settle: float
             ) -> tuple[int, int, bool]:
    victim = pair.primary()
    assert victim is not None, "no primary before the drill"
    with Readiness(base_url) as readiness, \
            Follower(base_url, tokens["auditor"], f"{name}/") as feed, \
            Writers(base_url, tokens["writer"], writers, name) as load:
        time.sleep(settle)
        killed_at = time.monotonic()
        if name == "postmaster":
            pair.kill_postmaster(victim)
            # Its keeper restarts it within a moment: whether the monitor fails over
            # first is a race, and either node may be the primary that comes back.
            failover_s = pair.wait_for_primary(timeout=120.0)
        else:
            pair.kill_node(victim)
            failover_s = pair.wait_for_primary(exclude=victim, timeout=120.0)
        while not load.tally.ack_times or load.tally.ack_times[-1] < killed_at + failover_s:
            time.sleep(0.1)
        time.sleep(settle)  # writing on the new primary for a while
    if name == "node":
        pair.restart_node(victim)
        pair.wait_for_secondary(victim)
    else:
        pair.wait_for_pair()
    tally = load.tally
    lost, duplicated = check(admin, tally)
    feed_missed, feed_twice = feed.check(tally.acknowledged)
    verdict = admin.get(f"/v1/tenants/{TENANT}/verify")
    verified = verdict.status_code == 200 and verdict.json().get("ok") is True
    if not verified:  # its status and reason (a chain check names no value)
        print(f"verify after {name}: {verdict.status_code} {verdict.text[:500]}", flush=True)
    print(f"{name}: acknowledged={len(tally.acknowledged)} lost={lost}"
          f" duplicated={duplicated} primary_back_s={failover_s:.1f}"
          f" writes_resumed_after_s={longest_gap(tally.ack_times, killed_at):.1f}"
          f" retried_attempts={tally.failed_attempts} reads={tally.reads}"
          f" wrong_reads={tally.bad_reads} verify={'ok' if verified else 'FAILED'}"
          f" readyz_not_ready_s={readiness.not_ready_s:.1f} readyz_after={readiness.last}"
          f" feed_missed={feed_missed} feed_twice={feed_twice}", flush=True)
    # The feed's figures and ``verify`` are reported, not required. CI saw ``verify`` fail
    # twice in about 15 drills after the postmaster scenario; the probable cause (a commit
    # in doubt found on the restarted old primary and checkpointed before the standby had
    # it) was fixed on 2026-12-06, and every drill since has passed both (README
    # "Deployments"). They become required once CI has shown as much.
    return lost, duplicated, tally.bad_reads == 0 and readiness.last == 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--settle", type=float, default=4.0,
                        help="seconds of writing before the kill and after the failover")
    parser.add_argument("--read-from-standby", action="store_true",
                        help="serve with LEDGER_READ_FROM_STANDBY (the checks' version"
                             " listings then read on the standby)")
    parser.add_argument("--base-port", type=int, default=55440,
                        help="the monitor's port; the nodes take the next two")
    args = parser.parse_args()
    started = time.monotonic()
    ensure_installed()
    admin_token = new_bootstrap_token()
    with tempfile.TemporaryDirectory(prefix="ledger-drill-") as scratch, \
            AutoFailoverPair(args.base_port, (args.base_port + 1, args.base_port + 2)) as pair:
        server = ledger_server(Path(scratch), database_url=pair.url, schema=None,
                               data_dir=Path(scratch) / "data", master_key=new_master_key(),
                               bootstrap_token=admin_token, name="drill")
        server.env["LEDGER_STORE_RETRY_TIMEOUT"] = "60"  # longer than any failover here
        if args.read_from_standby:
            server.env["LEDGER_READ_FROM_STANDBY"] = "true"
        server.start("/healthz")
        try:
            with httpx.Client(base_url=server.base_url, timeout=60.0,
                              headers={"Authorization": f"Bearer {admin_token}"}) as admin:
                admin.post("/v1/tenants", json={"tenant": TENANT}).raise_for_status()
                tokens = {role: admin.post(f"/v1/tenants/{TENANT}/tokens",
                                           json={"role": role}).json()["token"]
                          for role in ("writer", "auditor")}
                results = [scenario(pair, server.base_url, admin, tokens, name,
                                    args.writers, args.settle)
                           for name in ("postmaster", "node")]
        finally:
            server.stop()
    lost = sum(r[0] for r in results)
    duplicated = sum(r[1] for r in results)
    print(f"drill took {time.monotonic() - started:.0f} s", flush=True)
    print(f"failover: lost={lost} duplicated={duplicated}", flush=True)
    return 0 if lost == 0 and duplicated == 0 and all(r[2] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
