"""The pure core of secrets-ledger: the tenant aggregate, its rules and crypto primitives.

Nothing in this package performs I/O or imports from the other layers.
"""

import sys

from eventsourcing.utils import register_topic

# Events stored before the layers were packaged under ``secrets_ledger`` name their class
# as ``domain.<module>:<Class>``: that prefix resolves to this package, so old streams
# load (and their classes are these, not a second copy).
register_topic("domain", sys.modules[__name__])
