"""``python -m secrets_ledger.verifier``: the auditors' command line (``cli``)."""

from secrets_ledger.verifier.cli import main

raise SystemExit(main())
