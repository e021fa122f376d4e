"""``python -m secrets_ledger.api.cli``: the command as scripts may also run it."""

import sys

from secrets_ledger.api.cli import main

sys.exit(main())
