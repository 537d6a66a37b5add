"""Fetch the files the test suite needs from the network, once, before the tests run.

Run by ``scripts/test`` in its set-up step (``python scripts/fetch_test_data.py``),
so that no test needs the network. It fetches:

* pytest's JUnit XML schema (``testing/example_scripts/junit-10.xsd``, the
  Surefire-derived schema pytest validates its own ``--junitxml`` output with),
  from the sdist of the installed pytest, into ``.test-data/junit-10.xsd``. The
  JUnit tests read it from there (or from ``PROCTOR_JUNIT_XSD``).
* the sdists of the real suites the slow tier runs Proctor on (testscenarios,
  fixtures, pluggy), into ``.test-data/sdists/`` (``tests/runner/test_worker_sdists.py``
  unpacks them from there, or from ``PROCTOR_SDIST_CACHE``).

A file already there is kept. Exits non-zero, saying why, when a fetch fails.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".test-data"
XSD = DATA / "junit-10.xsd"
XSD_MEMBER = "testing/example_scripts/junit-10.xsd"


def fetch_junit_xsd() -> None:
    if XSD.is_file():
        return
    import pytest

    version = pytest.__version__
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--no-binary", ":all:", f"pytest=={version}", "--dest", scratch,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        sdists = sorted(Path(scratch).glob(f"pytest-{version}.tar.gz"))
        if done.returncode != 0 or not sdists:
            sys.exit(
                f"fetch_test_data: could not download the pytest {version} sdist holding the "
                f"JUnit XSD ({' '.join(command)}): exit {done.returncode}\n{done.stderr[-2000:]}"
            )
        with tarfile.open(sdists[0]) as archive:
            member = next(
                (m for m in archive.getmembers() if m.name.endswith("/" + XSD_MEMBER)), None
            )
            handle = archive.extractfile(member) if member is not None else None
            if handle is None:
                sys.exit(f"fetch_test_data: {sdists[0].name} has no {XSD_MEMBER}")
            DATA.mkdir(exist_ok=True)
            partial = XSD.with_suffix(".part")
            partial.write_bytes(handle.read())
            partial.replace(XSD)


SDISTS = DATA / "sdists"
SUITES = (("testscenarios", "0.7.0"), ("fixtures", "4.3.2"), ("pluggy", "1.6.0"))
"""The real suites of the slow tier: (name, version) of each sdist."""


def fetch_sdists() -> None:
    SDISTS.mkdir(parents=True, exist_ok=True)
    for name, version in SUITES:
        if (SDISTS / f"{name}-{version}.tar.gz").is_file():
            continue
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--no-binary", ":all:", f"{name}=={version}", "--dest", str(SDISTS),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0 or not (SDISTS / f"{name}-{version}.tar.gz").is_file():
            sys.exit(
                f"fetch_test_data: could not download the {name} {version} sdist "
                f"({' '.join(command)}): exit {done.returncode}\n{done.stderr[-2000:]}"
            )


if __name__ == "__main__":
    fetch_junit_xsd()
    fetch_sdists()
