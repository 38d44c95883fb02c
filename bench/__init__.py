"""Benchmarks that print figures (not run as tests)."""
