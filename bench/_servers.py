"""Server processes and the load generator for the HTTP figures (not a benchmark itself).

Starts ``secrets-ledger serve`` (configured as README's "Running in production" says),
the bare FastAPI app and ``moto_server`` as separate processes on free ports, waits
until they answer, reads their CPU time and resident memory from ``/proc``, stops them
with SIGTERM (SIGKILL after a grace period), and runs ``_loadgen.py`` as its own
process, sampling CPU use while its measured window is open.
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def console_script(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (expected beside {sys.executable})")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- /proc ------------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    user, system = process_user_sys_s(pid)
    return user + system


def process_user_sys_s(pid: int, task: int | None = None) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (or of one of its threads)."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    try:
        text = Path(path).read_text()
    except OSError:
        return float("nan"), float("nan")
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def threads_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process, by thread id."""
    out = {}
    try:
        tasks = [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return out
    for task in tasks:
        user, system = process_user_sys_s(pid, task)
        if not math.isnan(user):
            out[task] = user + system
    return out


def thread_names(pid: int) -> dict[int, str]:
    """Python thread names by thread id, from ``py-spy dump`` (pauses the process briefly)."""
    import re

    try:
        text = subprocess.run([console_script("py-spy"), "dump", "--pid", str(pid)],
                              capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, RuntimeError, subprocess.TimeoutExpired):
        return {}
    return {int(m.group(1)): m.group(2)
            for m in re.finditer(r'^Thread (\d+) \([^)]*\): "(.*)"$', text, re.MULTILINE)}


def backend_pids(url: str, application_name: str) -> list[int]:
    """PostgreSQL backends serving connections opened with this application_name."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                (application_name,)).fetchall()
    except psycopg.Error:
        return []
    return [int(row[0]) for row in rows]


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


def status_kb(pid: int, field_name: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM ...), in kB; -1 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


@dataclass
class CpuSample:
    at: float
    server_user: float
    server_sys: float
    postgres: dict[int, float]  # CPU seconds of each of the server's PostgreSQL backends
    machine_busy: int
    machine_total: int
    threads: dict[int, float]  # CPU seconds of each server thread, when asked for

    @classmethod
    def take(cls, pid: int, pg: tuple[str, str] | None = None,
             per_thread: bool = False) -> CpuSample:
        """``pg``: (url, application_name) of the server's connections, if any."""
        backends = {p: process_cpu_s(p) for p in backend_pids(*pg)} if pg else {}
        threads = threads_cpu_s(pid) if per_thread else {}
        busy, total = machine_busy_ticks()
        user, system = process_user_sys_s(pid)
        return cls(time.perf_counter(), user, system, backends, busy, total, threads)


def cpu_between(a: CpuSample, b: CpuSample) -> dict[str, float]:
    """CPU use over a window, as % of one core (server, postgres) or of the machine."""
    wall = b.at - a.at
    if wall <= 0:
        return {}
    total = b.machine_total - a.machine_total
    # Backends that ended in the window are missed; new ones count from zero.
    postgres = sum(cpu - a.postgres.get(p, 0.0) for p, cpu in b.postgres.items()
                   if not math.isnan(cpu))
    out = {
        "server_cpu_pct": (b.server_user + b.server_sys - a.server_user - a.server_sys)
        / wall * 100,
        "server_user_pct": (b.server_user - a.server_user) / wall * 100,
        "server_sys_pct": (b.server_sys - a.server_sys) / wall * 100,
        "postgres_cpu_pct": postgres / wall * 100,
        "machine_busy_pct": (b.machine_busy - a.machine_busy) / total * 100 if total else 0.0,
    }
    if b.threads:
        out["thread_cpu_pct"] = {tid: (cpu - a.threads.get(tid, 0.0)) / wall * 100
                                 for tid, cpu in b.threads.items()}
    return out


# ---- servers ----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    workdir: Path
    pg: tuple[str, str] | None = None  # (url, application_name) of its connections
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, ready_path: str = "/", timeout: float = 120.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.argv, env=self.env, cwd=self.workdir,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                                   + self.log_tail())
            try:
                httpx.get(self.base_url + ready_path, timeout=2.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer in {timeout} s:\n" + self.log_tail())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 40.0) -> int | None:
        """SIGTERM (the servers drain in-flight requests), SIGKILL after ``grace``."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def rss_kb(self) -> int:
        return status_kb(self.pid, "VmRSS")

    def hwm_kb(self) -> int:
        return status_kb(self.pid, "VmHWM")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(extra)
    return env


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def new_bootstrap_token() -> str:
    return f"slt_bench_{secrets.token_urlsafe(24)}"


def ledger_server(workdir: Path, *, database_url: str | None, schema: str | None,
                  data_dir: Path, master_key: str | None, bootstrap_token: str,
                  name: str = "ledger", cli: str | None = None,
                  aws_port: int | None = None) -> Server:
    """``secrets-ledger serve --host 127.0.0.1 --port P`` configured by the environment
    (``cli``: another installation's ``secrets-ledger``, to compare two builds)."""
    port = free_port()
    env = clean_env(LEDGER_DATA_DIR=str(data_dir), LEDGER_BOOTSTRAP_TOKEN=bootstrap_token)
    # libpq's PGAPPNAME names the server's connections, so that the CPU of its own
    # PostgreSQL backends can be told apart from the rest of a shared machine.
    env["PGAPPNAME"] = f"bench-{name}-{port}"
    if database_url is not None:
        env["LEDGER_DATABASE_URL"] = database_url
        if schema is not None:
            env["LEDGER_DATABASE_SCHEMA"] = schema
    if master_key is not None:
        env["LEDGER_MASTER_KEY"] = master_key
    argv = [cli or console_script("secrets-ledger"), "serve", "--host", "127.0.0.1", "--port",
            str(port), *(["--aws-port", str(aws_port)] if aws_port is not None else [])]
    pg = (database_url, env["PGAPPNAME"]) if database_url is not None else None
    return Server(name, argv, env, port, workdir, pg)


def wait_views(server: Server, timeout: float = 600.0) -> float:
    """Polls /readyz until the views include every stored event; the seconds waited."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(server.base_url + "/readyz", timeout=10.0)
            if response.status_code == 200 and response.json().get("lag") == 0:
                return time.perf_counter() - started
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{server.name}: views still behind after {timeout} s")


# ---- the load generator -----------------------------------------------------------------


def run_loadgen(spec: dict[str, Any], server: Server | None = None,
                during: Callable[[], None] | None = None,
                per_thread: bool = False) -> dict[str, Any]:
    """Runs ``_loadgen.py`` in its own process; samples CPU over its measured window.

    ``during`` is called every ~0.25 s while the window is open (e.g. to sample RSS).
    """
    process = subprocess.Popen([sys.executable, str(HERE / "_loadgen.py")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, bufsize=1)
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps(spec))
    process.stdin.close()
    first = last = None
    result: dict[str, Any] | None = None
    loadgen_cpu = [0.0, 0.0]
    sampler = None
    stop_sampling = None
    if during is not None:
        import threading

        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.25):
                during()

        sampler = threading.Thread(target=sample, daemon=True)
    for line in process.stdout:
        line = line.strip()
        if line == "START":
            if server is not None:
                first = CpuSample.take(server.pid, server.pg, per_thread)
            loadgen_cpu[0] = process_cpu_s(process.pid)
            if sampler is not None:
                sampler.start()
        elif line == "END":
            if server is not None:
                last = CpuSample.take(server.pid, server.pg, per_thread)
            loadgen_cpu[1] = process_cpu_s(process.pid)
            if stop_sampling is not None and sampler is not None:
                stop_sampling.set()
                sampler.join()
        elif line.startswith("{"):
            result = json.loads(line)
    stderr = process.stderr.read() if process.stderr is not None else ""
    code = process.wait()
    if result is None or code != 0:
        raise RuntimeError(f"load generator failed ({code}):\n{stderr[-3000:]}")
    if first is not None and last is not None:
        result.update(cpu_between(first, last))
        wall = last.at - first.at
        result["loadgen_cpu_pct"] = (loadgen_cpu[1] - loadgen_cpu[0]) / wall * 100 if wall else 0
    return result
