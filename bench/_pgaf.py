"""A pg_auto_failover 2.0 pair (monitor + two PostgreSQL 15 nodes) on loopback for the
failover drill; ``python bench/_pgaf.py`` runs both drills under single-row commits."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PACKAGES = ("pg-auto-failover-cli", "postgresql-15-auto-failover")
# Monitor GUCs (ms), named as in src/monitor/pg_auto_failover.c of pg_auto_failover v2.0: its
# defaults (5 s checks, 20 s unhealthy, 30 s demote, 10 s grace) make a lost node cost ~50 s.
MONITOR_SETTINGS = {f"pgautofailover.{name}": value for name, value in {
    "health_check_period": 1000, "health_check_timeout": 1000, "health_check_max_retries": 1,
    "health_check_retry_delay": 1000, "node_considered_unhealthy_timeout": 2000,
    "primary_demote_timeout": 2000, "startup_grace_period": 1000}.items()}


def ensure_installed() -> str:
    """Path of pg_autoctl, installing Debian's packages first if it is missing."""
    path = f"{os.environ.get('PATH', os.defpath)}:{PG_BIN}"
    if shutil.which("pg_autoctl", path=path) is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", *PACKAGES]
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    if (found := shutil.which("pg_autoctl", path=path)) is None:
        raise RuntimeError(f"pg_autoctl not found after installing {' '.join(PACKAGES)}")
    return found


@dataclass(eq=False)
class Node:
    name: str
    port: int
    pgdata: Path
    proc: subprocess.Popen[bytes] | None = None  # its `pg_autoctl` supervisor
    started: float = 0.0  # time.time() of its last `pg_autoctl run`


def _ours(prefix: str) -> list[int]:
    """Processes working in prefix… (pg_autoctl: see _popen; postgres: its data directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if os.readlink(entry / "cwd").startswith(prefix):
                pids.append(int(entry.name))
    return pids


def _kill(prefix: str) -> None:
    """SIGKILL them till none is left (the postmaster forks; its children: own sessions)."""
    while found := _ours(prefix):
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


class AutoFailoverPair:
    """Monitor + two nodes; a context manager that always removes what it started."""

    def __init__(self, monitor_port: int = 55440, ports: tuple[int, int] = (55441, 55442),
                 dbname: str = "ledger", start_timeout: float = 120.0) -> None:
        self.monitor_port, self.ports, self.dbname = monitor_port, ports, dbname
        self.start_timeout = start_timeout
        self.root = Path(tempfile.gettempdir(), f"pgaf-{os.urandom(6).hex()}")
        self.nodes: list[Node] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> AutoFailoverPair:
        self._exe = ensure_installed()
        self.root.mkdir(mode=0o700)  # a new name: were it taken, it would not be ours
        try:
            self._start(self.root)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return (f"postgresql://postgres@127.0.0.1:{self.ports[0]},127.0.0.1:{self.ports[1]}"
                f"/{self.dbname}?target_session_attrs=read-write&connect_timeout=2")

    def _start(self, root: Path) -> None:
        cwds = [f"{name}.cwd" for name in ("initdb", "monitor", "node1", "node2")]  # see _ours
        for path in (root, *(root / sub for sub in ("sock", "run", "config", "share", *cwds))):
            path.mkdir(mode=0o700, exist_ok=True)
            if os.geteuid() == 0:  # pg_autoctl refuses root: everything runs as postgres
                shutil.chown(path, "postgres", "postgres")
        self.nodes = [Node(f"node{i}", p, root / f"node{i}") for i, p in enumerate(self.ports, 1)]
        common = ["--pgctl", str(PG_BIN / "pg_ctl"), "--hostname", "127.0.0.1", "--listen",
                  "127.0.0.1", "--auth", "trust", "--no-ssl", "--run"]
        self._initdb(root / "monitor", MONITOR_SETTINGS)
        self._popen([self._exe, "create", "monitor", "--pgdata", str(root / "monitor"),
                     "--pgport", str(self.monitor_port), *common], "monitor")
        self._wait(lambda: bool(self._sql("SELECT 1 FROM pgautofailover.formation")),
                   self.start_timeout, "the monitor")
        monitor = f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover"
        # node1 only (node2 is its basebackup), with no spread checkpoint (90 s otherwise)
        self._initdb(self.nodes[0].pgdata, {"checkpoint_completion_target": 0})
        for node in self.nodes:
            node.proc = self._popen(
                [self._exe, "create", "postgres", "--pgdata", str(node.pgdata), "--pgport",
                 str(node.port), "--name", node.name, "--dbname", self.dbname,
                 "--monitor", f"{monitor}?sslmode=prefer", *common], node.name)
            if node is self.nodes[0]:  # the second joins a primary: start it once single
                self._wait(lambda: self.primary() is not None, self.start_timeout, node.name)
        self.wait_for_pair(self.start_timeout)

    def _initdb(self, pgdata: Path, settings: dict[str, int]) -> None:
        # pg_autoctl has no socket-dir option; the default /var/run/postgresql may be missing
        if self._popen([str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync"], "initdb").wait() != 0:
            raise RuntimeError(f"initdb {pgdata} failed\n{self.log_tail()}")
        conf = {"unix_socket_directories": f"'{pgdata.parent / 'sock'}'", **settings}
        with (pgdata / "postgresql.conf").open("a") as out:
            out.writelines(f"{name} = {value}\n" for name, value in conf.items())

    def _popen(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        # pg_autoctl's config, state and pid files (/tmp/pg_autoctl if no XDG_RUNTIME_DIR)
        xdg = {"CONFIG_HOME": "config", "DATA_HOME": "share", "RUNTIME_DIR": "run"}
        env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "HOME": str(self.root), "LC_ALL": "C.UTF-8",
               "PGHOST": str(self.root / "sock"),
               **{f"XDG_{key}": str(self.root / sub) for key, sub in xdg.items()}}
        # Own IPC namespace: the kernel drops the SysV semaphore/shm a killed tree would leave
        as_postgres = ["unshare", "--ipc", "setpriv", "--reuid=postgres", "--regid=postgres",
                       "--clear-groups"] if os.geteuid() == 0 else []
        with (self.root / f"{name}.log").open("ab") as log:  # own session: see close
            proc = subprocess.Popen([*as_postgres, *args], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                    cwd=self.root / f"{name}.cwd")
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        """Stop, then kill, every process started and anything working in the temp dir."""
        live = [proc for proc in self._procs if proc.returncode is None]
        for proc in live:  # pg_autoctl and the postmaster: a clean (fast) shutdown
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        _kill(f"{self.root}/")  # then whatever is left, orphans of earlier kills too
        shutil.rmtree(self.root, ignore_errors=True)
        for proc in live:
            proc.wait()

    def _sql(self, query: str) -> list[tuple[Any, ...]]:  # [] if the monitor is down
        dsn = f"host=127.0.0.1 port={self.monitor_port} dbname=pg_auto_failover user=postgres"
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, connect_timeout=2) as c:
            return c.execute(query).fetchall()
        return []

    def states(self) -> dict[str, tuple[str, str]]:  # name -> (reported, goal) state
        return {name: (reported, goal) for name, reported, goal in self._sql(
            "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node")}

    def primary(self) -> Node | None:
        """The node the monitor has as primary now (None while it fails over)."""
        names = {name for name, (reported, goal) in self.states().items()
                 if reported == goal and reported in ("single", "primary", "wait_primary")}
        return next((node for node in self.nodes if node.name in names), None)

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> float:
        start = time.monotonic()
        while not ready():
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what};"
                                   f" monitor states {self.states()}\n{self.log_tail()}")
            time.sleep(0.1)
        return time.monotonic() - start

    def log_tail(self, lines: int = 15) -> str:
        logs = sorted(self.root.glob("*.log"))
        return "\n".join(f"--- {log.name}\n" + "\n".join(
            log.read_text(errors="replace").splitlines()[-lines:]) for log in logs)

    def wait_for_primary(self, exclude: Node | None = None, timeout: float = 60.0) -> float:
        """Seconds until a node other than ``exclude`` is primary and commits a write."""
        def ready() -> bool:
            if (now := self.primary()) is None or now is exclude:
                return False
            dsn = f"host=127.0.0.1 port={now.port} dbname={self.dbname} user=postgres"
            with contextlib.suppress(psycopg.Error), psycopg.connect(
                    dsn, connect_timeout=2, options="-c statement_timeout=2000") as conn:
                return bool(conn.execute("SELECT txid_current()"))  # an xid: a write, committed
            return False
        return self._wait(ready, timeout, f"a primary other than {exclude and exclude.name}")

    def wait_for_pair(self, timeout: float = 120.0) -> float:
        want = [("primary", "primary"), ("secondary", "secondary")]
        return self._wait(lambda: sorted(self.states().values()) == want, timeout, "a pair")

    def wait_for_secondary(self, node: Node, timeout: float = 120.0) -> float:
        """Seconds until the node is secondary, as reported since its last (re)start."""
        query = (f"SELECT 1 FROM pgautofailover.node WHERE nodename = '{node.name}' AND"
                 " reportedstate = 'secondary' AND goalstate = 'secondary' AND reporttime"
                 f" > to_timestamp({node.started})")
        return self._wait(lambda: bool(self._sql(query)), timeout, f"{node.name} secondary")

    def kill_postmaster(self, node: Node) -> None:
        """SIGKILL the node's postmaster only (its pg_autoctl stays)."""
        pid = int((node.pgdata / "postmaster.pid").read_text().split()[0])
        if pid not in _ours(str(node.pgdata)):  # a stale pid file: that pid is not ours
            raise RuntimeError(f"{node.name} has no postmaster running")
        os.kill(pid, signal.SIGKILL)

    def kill_node(self, node: Node) -> None:
        """The whole node dies at once: its pg_autoctl processes, postgres and backends."""
        _kill(str(node.pgdata))  # its data directory and its pg_autoctl's `.cwd`
        if node.proc is not None:  # reaped: `pg_autoctl run` takes a zombie's pid as alive
            node.proc.wait()

    def set_node(self, node: Node, setting: str, value: str) -> None:
        """`pg_autoctl set node <setting> <value>` for the node (e.g. replication-quorum)."""
        args = [self._exe, "set", "node", setting, value, "--pgdata", str(node.pgdata)]
        if self._popen(args, node.name).wait(60) != 0:
            raise RuntimeError(f"pg_autoctl set node {setting} {value} failed\n{self.log_tail()}")

    def restart_node(self, node: Node) -> None:
        """`pg_autoctl run` a killed node again: it rejoins as secondary (pg_rewind)."""
        node.started = time.time()
        node.proc = self._popen([self._exe, "run", "--pgdata", str(node.pgdata)], node.name)


def _drill(pair: AutoFailoverPair, scenario: str, ids: Iterator[int]) -> None:
    acks: list[tuple[float, int]] = []  # (acknowledged at, row) of single-row commits
    fails: list[float] = []  # when a connection broke or could not be made
    stop, url, old = threading.Event(), pair.url, pair.primary()
    assert old is not None

    def write() -> None:
        while not stop.is_set():
            with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as conn:
                while not stop.is_set():
                    conn.execute("INSERT INTO drill VALUES (%s, %s)", (row := next(ids), scenario))
                    acks.append((time.monotonic(), row))
            fails.append(time.monotonic())
            time.sleep(0.05)
    (writer := threading.Thread(target=write, daemon=True)).start()  # daemon: if checks fail
    time.sleep(2)
    killed, failover, rejoin = time.monotonic(), "-", "-"
    if scenario == "postmaster":
        pair.kill_postmaster(old)
    else:
        pair.kill_node(old)
        failover = f"{pair.wait_for_primary(exclude=old):.2f} s"
        pair.restart_node(old)
        rejoin = f"{pair.wait_for_secondary(old):.2f} s"
    pair._wait(lambda: bool(fails) and killed < fails[-1] < acks[-1][0], 60, "writes")
    pair.wait_for_pair()  # the monitor may still fail over a restarted postmaster
    stop.set()
    writer.join()
    failed = next(at for at in fails if at > killed)
    resumed = next(at for at, _ in acks if at > failed) - killed
    pause = max(b[0] - a[0] for a, b in itertools.pairwise(acks) if b[0] > killed)
    with psycopg.connect(pair.url) as conn:
        rows = conn.execute("SELECT id FROM drill WHERE scenario = %s", (scenario,))
        missing = len({row for _, row in acks} - {row for row, in rows})
    now = pair.primary()
    print(f"{scenario}: killed {old.name} (primary now {now and now.name}); writes again after"
          f" {resumed:.2f} s, longest pause {pause:.2f} s; monitor failover {failover}, rejoined"
          f" as secondary {rejoin} after restart; {len(acks)} acknowledged, {missing} missing")
    assert missing == 0, f"{missing} acknowledged rows lost"


def main() -> None:
    began = time.monotonic()
    with AutoFailoverPair() as pair:
        root = pair.root
        print(f"pair up in {time.monotonic() - began:.1f} s: {pair.url}")
        rows = pair._sql("SELECT name, setting FROM pg_settings WHERE name LIKE 'pgauto%'")
        print("monitor: " + ", ".join(f"{name}={value}" for name, value in rows))
        with psycopg.connect(pair.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE drill (id bigint PRIMARY KEY, scenario text)")
        _drill(pair, "postmaster", ids := itertools.count(1))
        _drill(pair, "node", ids)
    left = _ours(f"{root}/")  # processes working in the temp dir, as close() finds them
    print(f"total {time.monotonic() - began:.1f} s; temp dir left: {root.exists()}; processes"
          f" left: {left}")
    assert not left and not root.exists()


if __name__ == "__main__":
    main()
