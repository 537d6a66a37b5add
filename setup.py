"""Build the optional C accelerator of the wire codec; everything else is in pyproject.toml.

The extension is optional: when no C compiler is available the build goes on
and Proctor uses its pure-Python codec, which gives identical results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "proctor.wire._speedups",
            ["src/proctor/wire/_speedups.c"],
            optional=True,
        )
    ]
)
