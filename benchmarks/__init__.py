"""Benchmarks: scripts that print figures (see README, Performance)."""
