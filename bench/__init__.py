"""Benchmarks: run on purpose (make bench), never inside the test suite."""
