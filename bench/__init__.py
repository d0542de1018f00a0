"""Benchmarks, run on request (see bench/README.md); not part of the test suite."""
