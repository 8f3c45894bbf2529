"""Benchmarks: accuracy against exact answers and speed against baselines (print tables, write JSON)."""
