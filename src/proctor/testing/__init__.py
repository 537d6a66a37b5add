"""Helpers for testing and measuring Proctor: generated inputs with known answers.

Nothing of Proctor imports this package; the tests and the benchmarks do.
"""
