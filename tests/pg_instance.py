"""A throwaway PostgreSQL 15 server of its own (initdb in a temp dir, its own port), for
the tests that need two separate servers (tenant groups on two instances), and a
streaming standby of one (``StandbyInstance``: pg_basebackup, then hot standby)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresInstance:
    def __init__(self) -> None:
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.pgdata = self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """One statement in a connection of its own (autocommit); its rows, if any."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []

    def _run(self, *args: str) -> None:
        # initdb and the postmaster refuse to run as root: as the postgres user, then.
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres",
                       "--clear-groups"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, *args], check=True, capture_output=True,
                       cwd=self.root, env={"PATH": f"{PG_BIN}:/usr/bin:/bin",
                                           "LC_ALL": "C.UTF-8"})

    def _create(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")

    def __enter__(self) -> PostgresInstance:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._create()
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-w", "-l",
                  str(self.root / "log"), "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
                  " -c fsync=off", "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise
                time.sleep(0.1)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        subprocess.run([*(["setpriv", "--reuid=postgres", "--regid=postgres",
                           "--clear-groups"] if os.geteuid() == 0 else []),
                        str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "immediate",
                        "stop"], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


class StandbyInstance(PostgresInstance):
    """A hot standby streaming from ``primary`` (initdb's trust rules allow replication
    from loopback); ``pause``/``resume`` its replay, as a standby falls behind."""

    def __init__(self, primary: PostgresInstance) -> None:
        super().__init__()
        self.primary = primary

    def _create(self) -> None:
        self._run(str(PG_BIN / "pg_basebackup"), "-D", str(self.pgdata), "-R", "-X",
                  "stream", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres")

    def pause(self) -> None:
        """Returns once replay has stopped: the call only asks the startup process."""
        self.sql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10.0
        while self.sql("SELECT pg_get_wal_replay_pause_state()") != [("paused",)]:
            assert time.monotonic() < deadline, "the standby's replay never paused"
            time.sleep(0.01)

    def resume(self) -> None:
        self.sql("SELECT pg_wal_replay_resume()")
