"""Benchmarks for drain: the write path against the COPY ceiling (see bench/README.md)."""
