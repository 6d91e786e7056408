"""The maths of metric validation (no I/O): correlations, agreement, detection statistics."""
