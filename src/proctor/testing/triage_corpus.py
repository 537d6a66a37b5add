"""A labelled corpus of real failures, for measuring failure signatures.

:func:`build_corpus` writes a small generated project (a ``shop`` package and
its pytest suite) into a directory, runs its suite with real pytest once per
(commit, run), and returns every failure's text in five formats with the fault
that caused it (the ground truth):

* ``long``, ``short``, ``auto`` (pytest's default) and ``native``: pytest's own
  rendering of the failure (``--tb=...``), as Proctor's worker stores it;
* ``cpython``: ``traceback.format_exception`` of the same exception (the whole
  stack, pytest's frames included), as unittest and testtools print it.

What varies, and why each is there (see docs/triage.md):

* **commits** shift every function's line numbers (comment and blank lines
  inserted, a different number above each function and module);
* **runs** change the project's directory, pytest's temporary directories,
  the values in messages (ids, ports, counts, timestamps) and object addresses;
* **call paths**: one fault is reached from several tests through different
  chains of project functions;
* **look-alikes**: different faults with the same exception type in the same
  module and the same message form (in different functions, and from two
  ``raise`` statements of one function), a fault raised inside the standard
  library's ``json`` from two different project callers, an assertion in a
  shared test helper used by three tests beside tests whose own assertions read
  alike (``assert 7 == 9``), chained exceptions (explicit and during handling),
  an exception carrying an object's repr, unbounded recursion.

It lives in ``proctor.testing`` rather than ``tests/`` because both the quality
test (``tests/triage/test_quality.py``) and the benchmark (``bench/triage.py``)
use it: the package is importable from both without path tricks. pytest is
needed only in the child processes it starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EDITS", "FAULTS", "FORMATS", "CorpusError", "Sample", "build_corpus"]

FORMATS = ("long", "short", "auto", "native", "cpython")


@dataclass(frozen=True, slots=True)
class Sample:
    """One failure: the fault that caused it (the label), the test, the format
    its text is in, which commit and run produced it, the text, and the
    project's directory in that run."""

    fault: str
    test: str
    format: str
    commit: int
    run: int
    text: str
    root: str


class CorpusError(Exception):
    """The generated suite did not fail as designed (a broken generator or pytest)."""


# test name -> the fault it hits. Several tests sharing a fault reach it by
# different call paths; faults named alike are the look-alikes.
FAULTS = {
    "test_timeout_setting": "config-missing-key",
    "test_startup": "config-missing-key",
    "test_reload": "config-missing-key",
    "test_load_settings": "config-file-missing",
    "test_startup_from_file": "config-file-missing",
    "test_port": "port-out-of-range",
    "test_timeout_value": "timeout-invalid",
    "test_retries_value": "retries-invalid",
    "test_window_start": "window-start-invalid",
    "test_window_end": "window-end-invalid",
    "test_read_order": "order-json",
    "test_read_customer": "customer-json",
    "test_cache": "cache-miss",
    "test_lookup": "cache-miss",
    "test_ping": "connection-refused",
    "test_health": "connection-refused",
    "test_fetch": "fetch-handler-bug",
    "test_order_small": "helper-order-total",
    "test_order_large": "helper-order-total",
    "test_order_refund": "helper-order-total",
    "test_count_items": "assert-count",
    "test_sum_prices": "assert-sum",
    "test_stock_levels": "assert-stock",
    "test_customer_names": "assert-names",
    "test_nesting": "recursion",
}

_HEAD = """\
import datetime
import json
import os
import random

RNG = random.Random(int(os.environ.get("CORPUS_SEED", "0")))
"""

_CONFIG = [
    _HEAD,
    """\
class ConfigError(Exception):
    pass
""",
    """\
def get_setting(settings, name):
    return settings[name]
""",
    """\
def load_settings(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError as error:
        stamp = datetime.datetime.now().isoformat()
        raise ConfigError(f"cannot load {path} (at {stamp})") from error
""",
    """\
def parse_port(text):
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"invalid value {port!r}")
    return port
""",
    """\
def parse_timeout(value):
    if value < 0:
        raise ValueError(f"invalid value {value!r}")
    return value
""",
    """\
def parse_retries(value):
    if value > 10:
        raise ValueError(f"invalid value {value!r}")
    return value
""",
    """\
def parse_window(start, end):
    if start < 0:
        raise ValueError(f"invalid value {start!r}")
    if end > 100:
        raise ValueError(f"invalid value {end!r}")
    return start, end
""",
]

_APP = [
    _HEAD + "\nfrom shop import config, records\n",
    """\
def startup(settings):
    return {"timeout": config.get_setting(settings, f"timeout_{RNG.randint(1, 999)}")}
""",
    """\
def reload(settings):
    merged = dict(settings)
    return startup(merged)
""",
    """\
def startup_from(path):
    return config.load_settings(path)
""",
    """\
def lookup(cache, key):
    return cache.get(key)
""",
    """\
def nesting(node):
    return nesting([node])
""",
]

_RECORDS = [
    _HEAD,
    """\
def read_order(blob):
    return json.loads(blob)
""",
    """\
def read_customer(blob):
    return json.loads(blob)
""",
    """\
class Cache:
    def __init__(self):
        self.entries = {}

    def get(self, key):
        if key not in self.entries:
            raise LookupError(f"{self!r} has no entry {key!r}")
        return self.entries[key]
""",
]

_NET = [
    _HEAD,
    """\
class Client:
    def __init__(self, host, port):
        self.host = host
        self.port = port

    def connect(self):
        address = f"{self.host}:{self.port}"
        raise ConnectionRefusedError(111, f"Connection refused: {address}")

    def fetch(self):
        try:
            self.connect()
        except ConnectionRefusedError:
            self.logger.warning("retrying")
""",
    """\
def ping(host, port):
    Client(host, port).connect()
""",
    """\
def check_all(hosts):
    for host in hosts:
        ping(host, RNG.randint(1024, 65535))
""",
]

_HELPERS = [
    "",
    """\
def check_order(order):
    assert order["total"] >= 0, f"order {order['id']} has a negative total {order['total']}"
""",
]

_TESTS = [
    _HEAD
    + "\nimport unittest\n\nfrom shop import app, config, net, records\n"
    + "from tests.helpers import check_order\n",
    """\
def test_timeout_setting():
    config.get_setting({"retries": 3}, f"timeout_{RNG.randint(1, 999)}")
""",
    """\
def test_startup():
    app.startup({"retries": RNG.randint(1, 9)})
""",
    """\
def test_reload():
    app.reload({"retries": RNG.randint(1, 9)})
""",
    """\
def test_load_settings(tmp_path):
    config.load_settings(tmp_path / f"settings-{RNG.randint(1, 99)}.json")
""",
    """\
def test_startup_from_file(tmp_path):
    app.startup_from(str(tmp_path / "shop.json"))
""",
    """\
def test_port():
    config.parse_port(str(RNG.randint(70000, 99999)))
""",
    """\
def test_timeout_value():
    config.parse_timeout(-RNG.randint(1, 500))
""",
    """\
def test_retries_value():
    config.parse_retries(RNG.randint(11, 500))
""",
    """\
def test_window_start():
    config.parse_window(-RNG.randint(1, 99), RNG.randint(1, 99))
""",
    """\
def test_window_end():
    config.parse_window(RNG.randint(1, 99), RNG.randint(101, 999))
""",
    """\
def test_read_order():
    records.read_order('{"id": %d, "lines": [' % RNG.randint(1, 10**6))
""",
    """\
def test_read_customer():
    records.read_customer('{"id": %d, "name": ' % RNG.randint(1, 10**6))
""",
    """\
def test_cache():
    records.Cache().get(RNG.randint(1, 10**6))
""",
    """\
def test_lookup():
    app.lookup(records.Cache(), f"sku-{RNG.randint(1, 10**6)}")
""",
    """\
def test_ping():
    net.ping(f"10.0.{RNG.randint(0, 255)}.{RNG.randint(1, 254)}", RNG.randint(1024, 65535))
""",
    """\
def test_health():
    net.check_all([f"db{RNG.randint(1, 9)}.example.com"])
""",
    """\
def test_fetch():
    net.Client("127.0.0.1", RNG.randint(1024, 65535)).fetch()
""",
    """\
def test_order_small():
    check_order({"id": RNG.randint(1, 10**6), "total": -RNG.randint(1, 9)})
""",
    """\
def test_order_large():
    check_order({"id": RNG.randint(1, 10**6), "total": -RNG.randint(1000, 9999)})
""",
    """\
def test_order_refund():
    order = {"id": RNG.randint(1, 10**6), "total": 0}
    order["total"] -= RNG.randint(1, 99)
    check_order(order)
""",
    """\
def test_count_items():
    count = RNG.randint(1, 50)
    assert count == count + RNG.randint(1, 9)
""",
    """\
def test_sum_prices():
    total = sum(RNG.randint(1, 9) for _ in range(5))
    assert total == total + RNG.randint(1, 9)
""",
    """\
class TestInventory(unittest.TestCase):
    def test_stock_levels(self):
        levels = [RNG.randint(0, 9) for _ in range(4)]
        self.assertEqual(levels, [level + 1 for level in levels])

    def test_customer_names(self):
        names = [f"customer-{RNG.randint(1, 999)}" for _ in range(3)]
        self.assertEqual(names, sorted(names, reverse=True) + ["x"])
""",
    """\
def test_nesting():
    import inspect
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 40)  # a short stack: cheap to render
    try:
        app.nesting(RNG.randint(1, 9))
    finally:
        sys.setrecursionlimit(limit)
""",
]

_CONFTEST = '''\
"""Writes every failure, rendered in each traceback style, to $CORPUS_OUT."""

import json
import os
import traceback


def pytest_exception_interact(node, call, report):
    error = call.excinfo
    texts = {}
    for style in ("long", "short", "auto", "native"):
        texts[style] = str(node._repr_failure_py(error, style=style))
    texts["cpython"] = "".join(traceback.format_exception(error.type, error.value, error.tb))
    with open(os.environ["CORPUS_OUT"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"test": node.name, "texts": texts}) + "\\n")
'''


def _module(chunks: list[str], commit: int, salt: int) -> str:
    """The chunks, with commit-dependent filler before each: line numbers shift
    between commits, differently for each function."""
    parts = []
    for index, chunk in enumerate(chunks):
        filler = (commit * (index + salt + 1)) % 7 + 2 * commit
        lines = ("\n" if k % 2 else f"# commit {commit}: note {k}\n" for k in range(filler))
        parts.append("".join(lines))
        parts.append(textwrap.dedent(chunk).rstrip("\n") + "\n\n\n")
    return "".join(parts)


# Edits a later commit makes (with ``edits=True``): what frames-v1 is known to
# split, measured apart from the corpus the target is judged on.
EDITS = (
    # A function renamed (callers updated).
    ("shop/config.py", "def parse_timeout(", "def parse_timeout_seconds("),
    ("tests/test_shop.py", "config.parse_timeout(", "config.parse_timeout_seconds("),
    # A formatter splitting the failing statement over lines.
    (
        "shop/config.py",
        'raise ConfigError(f"cannot load {path} (at {stamp})") from error',
        'raise ConfigError(\n            f"cannot load {path} (at {stamp})"\n        ) from error',
    ),
    # The failing line's message reworded.
    (
        "shop/config.py",
        'raise ValueError(f"invalid value {port!r}")',
        'raise ValueError(f"bad port {port!r}")',
    ),
)


def _write_project(root: Path, commit: int, edits: bool) -> None:
    files = {
        "shop/__init__.py": [""],
        "shop/config.py": _CONFIG,
        "shop/app.py": _APP,
        "shop/records.py": _RECORDS,
        "shop/net.py": _NET,
        "tests/__init__.py": [""],
        "tests/helpers.py": _HELPERS,
        "tests/test_shop.py": _TESTS,
    }
    for salt, (name, chunks) in enumerate(files.items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _module(chunks, commit, salt)
        for file, old, new in EDITS if edits and commit > 0 else ():
            if file == name:
                assert old in text, (file, old)
                text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    (root / "conftest.py").write_text(_CONFTEST, encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")


def build_corpus(
    where: Path,
    *,
    commits: int = 3,
    runs: int = 2,
    seed: int = 0,
    edits: bool = False,
    python: str = sys.executable,
) -> list[Sample]:
    """Generate, run and collect the corpus under ``where`` (see the module
    docstring): ``commits`` x ``runs`` runs of the suite, each failure in every
    one of :data:`FORMATS`. With ``edits``, every commit after the first also
    makes the :data:`EDITS` (a rename, a reflowed and a reworded failing line).
    Raises :class:`CorpusError` when a run does not fail exactly the designed
    tests."""
    samples = []
    for commit in range(commits):
        for run in range(runs):
            root = Path(tempfile.mkdtemp(prefix=f"c{commit}r{run}-", dir=where))
            _write_project(root, commit, edits)
            samples += _run(root, commit, run, seed * 1_000_003 + commit * 1_009 + run, python)
    return samples


def _run(root: Path, commit: int, run: int, seed: int, python: str) -> list[Sample]:
    out = root / "failures.jsonl"
    env = dict(os.environ, CORPUS_SEED=str(seed), CORPUS_OUT=str(out), PYTHONHASHSEED=str(seed))
    env.pop("PYTEST_ADDOPTS", None)
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    done = subprocess.run(
        [*command, "tests/test_shop.py"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seen: dict[str, dict[str, str]] = {}
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            seen[record["test"]] = record["texts"]
    if set(seen) != set(FAULTS):
        missing = sorted(set(FAULTS) - set(seen))
        extra = sorted(set(seen) - set(FAULTS))
        raise CorpusError(
            f"the generated suite in {root} did not fail as designed (missing {missing}, "
            f"unexpected {extra}); pytest said:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        )
    return [
        Sample(FAULTS[test], test, style, commit, run, texts[style], str(root))
        for test, texts in sorted(seen.items())
        for style in FORMATS
    ]
