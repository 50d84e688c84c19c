"""Benchmarks for Revurb (and Soketi beside it): `bench/run SCENARIO`, see docs/benchmarks.md."""
