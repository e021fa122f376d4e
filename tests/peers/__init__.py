"""The peers' own test suites (moto's for the AWS façade), run unmodified against the
ledger; the plugins they load live in ``plugins/`` (outside any package named ``tests``,
which is what the peers call their own test trees)."""
