"""The C extensions; everything else about the package is in pyproject.toml.

The classifier's per-token loops and segmenter (`classifiers/_native.c`, `_segment.c`),
the event store's SimHash (`responders/_native.c`) and Kafka's key hash
(`pipeline/_native.c`) need a C compiler and the Python headers at install time (README
set-up; the Dockerfile installs gcc for the build). Declared here rather than in
pyproject.toml, whose `ext-modules` table setuptools still calls experimental.
"""

from setuptools import Extension, setup

SOURCES = {
    "classifiers": ["classifiers/_native.c", "classifiers/_segment.c"],
    "responders": ["responders/_native.c"],
    "pipeline": ["pipeline/_native.c"],
}

setup(
    ext_modules=[
        Extension(
            f"{package}._native",
            sources,
            depends=["classifiers/_native.h"] if package == "classifiers" else [],
            extra_compile_args=["-O2"],
        )
        for package, sources in SOURCES.items()
    ]
)
