from secrets_ledger.domain.changes import RequestContext
from tests.support import Blocking


def test_a_written_secret_reads_back(ledger: Blocking, tenant: str, ctx: RequestContext) -> None:
    written = ledger.put_secret(tenant, "db/password", {"pw": "s3cret"}, None, None, ctx)
    assert (written.version, written.created) == (1, True)
    assert ledger.get_secret(tenant, "db/password", ctx).value == {"pw": "s3cret"}
