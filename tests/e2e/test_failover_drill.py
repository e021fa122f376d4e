"""The failover drill, as an operator runs it: a real pg_auto_failover pair (installed
from Debian packages when missing), ``secrets-ledger serve`` on its multi-host URL, and
acknowledged HTTP writes through the primary's postmaster killed and through the whole
primary node killed. Nothing acknowledged may be lost or applied twice, reads never
return another value, and ``/readyz`` is back at 200. (The drill's change-feed figures
and its ``verify`` are reported, not asserted yet: see README "Deployments".)

A machine that cannot run the pair (no packages, no ``postgres`` user) fails here: the
drill is part of the suite, never skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DRILL = Path(__file__).resolve().parents[2] / "bench" / "failover.py"


def test_the_failover_drill_loses_nothing_and_duplicates_nothing() -> None:
    done = subprocess.run([sys.executable, str(DRILL), "--writers", "6", "--settle", "3"],
                          capture_output=True, text=True, timeout=300, check=False)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert lines[-1] == "failover: lost=0 duplicated=0"
    scenarios = [line for line in lines if line.startswith(("postmaster:", "node:"))]
    assert len(scenarios) == 2
    for line in scenarios:
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        assert int(fields["acknowledged"]) > 0
        assert fields["wrong_reads"] == "0"
        assert fields["readyz_after"] == "200"
