"""Proctor runs a Python project's tests fast, keeps every result, and turns failures into
evidence."""

__version__ = "0.1.0.dev0"
