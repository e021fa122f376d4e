"""Preparing a batch of the group-commit writer (``writer.BatchWriter``): its callers
authenticated and admitted, and its value reads answered, each in one statement."""

from __future__ import annotations

from typing import Any

from secrets_ledger.core.jobs import Job
from secrets_ledger.core.policy import authorize
from secrets_ledger.core.ports import TokenRows, ValueLookups
from secrets_ledger.core.principals import Principal, principal_of


def admit_commands(batch: list[Job[Any]], tokens: TokenRows) -> list[Job[Any]]:
    """Authenticates the commands' callers (their tokens' rows read in one statement)
    and admits each for its use case; those refused are answered here. Value reads
    are admitted with their rows (``answer_reads``). The jobs that go on, in order."""
    digests = sorted({token.digest for job in batch
                      if job.lookup is None and (token := job.token) is not None})
    rows = tokens.by_hashes(digests) if digests else {}

    def admit(job: Job[Any]) -> bool:
        token = job.token
        principal = (principal_of(token.digest, rows.get(token.digest))
                     if token is not None else job.credential)
        assert isinstance(principal, Principal)
        authorize(principal, job.tenant, job.use_case)
        job.admitted(principal)
        return True

    return [job for job in batch if job.lookup is not None or job.prepared(admit)]


def answer_reads(batch: list[Job[Any]], lookups: ValueLookups) -> list[Job[Any]]:
    """Reads the rows of the batch's value reads in one statement, admits each caller
    and has each row judged; those refused (or with nothing to record) are answered
    here. A read goes on with its result and the reads to record."""
    # A read answered in an earlier run of the batch (``BatchWriter._run``) goes on as is.
    reading = [job.lookup for job in batch if job.lookup is not None and job.answer is not None]
    if not reading:
        return batch
    rows = iter(lookups.value_rows(reading))

    def answer(job: Job[Any]) -> bool:  # called for every job, in order: one row each read
        if job.lookup is None or job.answer is None:
            return True
        row = next(rows)
        token = job.token
        principal = (principal_of(token.digest, row.token) if token is not None
                     else job.credential)
        assert isinstance(principal, Principal)
        authorize(principal, job.tenant, job.use_case)
        job.admitted(principal)
        assert job.ctx is not None
        job.result, job.reads = job.answer(row, job.ctx)
        job.answer = None
        if not job.reads:  # nothing to record: nothing is handed out yet
            job.finish(job.result)
        return bool(job.reads)

    return [job for job in batch if job.prepared(answer)]
