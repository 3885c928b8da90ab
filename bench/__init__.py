"""Benchmarks of salespulse: they print figures and never assert (docs/BENCHMARKS.md).

Tooling beside the product, not part of it: nothing in services/, events/, projections/
or alerts/ imports this package (an import-linter contract in pyproject.toml).
"""
