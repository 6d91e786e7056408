"""Validating the metrics themselves: human-judgment correlation and sensitivity to local edits."""
