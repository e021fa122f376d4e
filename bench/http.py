"""Figure 2: HTTP requests/s and p50/p99 latency, reading one secret (GET) and writing one (PUT).

    /tmp/venv/bin/python bench/http.py [--quick] [--backend sqlite] [--profile DIR]
        [--compare-with OTHER/bin/secrets-ledger]

16 concurrent keep-alive clients in a separate load-generator process
(``bench/_loadgen.py``: a minimal asyncio HTTP/1.1 client on uvloop; ``--client httpx``
for ``httpx.AsyncClient``), each with one request in flight, for a fixed window (5 s,
``--quick`` 2 s) after a warm-up (1 s, ``--quick`` 0.5 s); every request carries the same
300-byte value (PUT) or asks for it (GET). The targets, all separate processes on
127.0.0.1, measured interleaved (rep 1 of every target, then rep 2 ...):

- ledger: ``secrets-ledger serve`` configured as README's "Running in production"
  says (PostgreSQL in a fresh schema, master key and bootstrap token from the
  environment). A tenant and a writer token are made over the API; GET reads a secret
  PUT beforehand (each read is decrypted and durably audited before it is answered);
  PUT writes a new version of one key.
- moto: ``moto_server``'s Secrets Manager, GetSecretValue / PutSecretValue over its
  JSON protocol on a secret made with CreateSecret.
- bare / bare-async: ``bench/_bare_app.py``, the same two routes in FastAPI answering
  a constant JSON body of the ledger's answer size, served by uvicorn exactly as
  ``serve`` serves the ledger; ``def`` handlers (bare: the baseline the targets were set
  against) or ``async def`` (bare-async).
- ledger-before (only with ``--compare-with PATH``): another installation's
  ``secrets-ledger`` console script (an earlier build, in a venv of its own), started,
  set up and checked exactly as ledger (its own schema and data directory, same
  environment), so that two builds are compared in one run on one machine. It is one
  more baseline of the ledger (``ledger/ledger-before``) and gets its own ratios against
  the others (``ledger-before/bare`` ...); the goal against bare stays the ledger's.

Before each ledger measurement the views catch up (``/readyz`` lag 0). Each row also
shows the CPU used while its window was open: the server process, every PostgreSQL
process, the load generator (% of one core) and the whole machine (%, 2 cores = 100).
Correctness at the end: every response was 2xx; the ledger's version count of the
written key equals its acknowledged PUTs; its audit trail holds one ``read`` row per
acknowledged GET (each ledger target its own); moto's secret holds the value. The
schemas are dropped at the end.

The code is in ``_http_figure.py``: this file is named like the standard library's
``http`` package, and bench/ is first on sys.path when a script in it runs, so this file
only moves its folder behind the standard library and, when another script in bench/
imports ``http`` by mistake (httpx and urllib do), loads the real package in its place.
"""

from __future__ import annotations

import os
import sys

_BENCH = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _BENCH:
        sys.path.append(sys.path.pop(0))  # the standard library's http comes first
    import time

    from _http_figure import console, main

    started = time.perf_counter()
    code = main()
    console.print(f"[dim]{time.perf_counter() - started:.0f} s[/dim]")
    sys.exit(code)
elif __name__ == "http":  # pragma: no cover - found on sys.path instead of the stdlib's
    import importlib.util
    import sysconfig

    _stdlib = os.path.join(sysconfig.get_paths()["stdlib"], "http")
    _spec = importlib.util.spec_from_file_location(
        "http", os.path.join(_stdlib, "__init__.py"), submodule_search_locations=[_stdlib])
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["http"] = _module  # the import system hands this module to the importer
    _spec.loader.exec_module(_module)
