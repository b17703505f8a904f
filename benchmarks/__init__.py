"""Benchmarks run by hand (not by make test); see each module for how to run it."""
