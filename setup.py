"""The C extensions; everything else about the package is in pyproject.toml.

The classifier's per-token loops (`classifiers/_native.c`), the event store's SimHash
(`responders/_native.c`) and Kafka's key hash (`pipeline/_native.c`) need a C compiler
and the Python headers at install time (README set-up; the Dockerfile installs gcc for
the build). Declared here rather than in pyproject.toml, whose `ext-modules` table
setuptools still calls experimental.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(f"{package}._native", [f"{package}/_native.c"], extra_compile_args=["-O2"])
        for package in ("classifiers", "responders", "pipeline")
    ]
)
