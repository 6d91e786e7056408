"""Metrics: public front-ends (one module per family), their maths in :mod:`.functional`, and the
one registry (:mod:`.registry`) that every list of metrics derives from.

Importing this package registers the built-in metrics (:mod:`.builtin`) and imports no torch.
"""

from pytest_i2i.metrics import builtin as _builtin  # noqa: F401  (registers the built-in metrics)
