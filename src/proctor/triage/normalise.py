"""Message normalisation: the values that vary from run to run, masked.

A failure's message says what went wrong, and also carries values that change
every run without changing the fault: numbers, ids, addresses, timestamps,
temporary directories. :func:`normalise_message` replaces them with
placeholders so that two occurrences of one fault read the same. It is the
union of Sentry's parameterisation list and LUCI Analysis' masking (see
``reference/triage.md`` 7.2), applied in this order (earlier masks protect
their text from later ones):

=================================================  ==============
what                                               placeholder
=================================================  ==============
temporary paths (``/tmp/...``, macOS'              ``<tmp>``
``/var/folders/../T``, pytest's ``pytest-of-*``)
``<Foo object at 0x7f..>`` and any ``0x`` run of   ``<addr>``
6 or more hex digits (a memory address)
other ``0x`` numbers                               ``<hex>``
UUIDs                                              ``<uuid>``
ISO 8601 dates and times, ``datetime(...)``        ``<date>``
clock times (``12:03:59.120``)                     ``<time>``
IPv6 and IPv4 addresses                            ``<ip>``
``host:port`` with a numeric port                  ``host:<port>``
numbers, hex digests, ids (a run of hex digits     ``<n>``
with at least one decimal digit, not glued to a
letter before it), with a unit suffix (``10s``)
=================================================  ==============

A temporary path keeps what follows the temporary directory itself
(``/tmp/tmpab12cd/settings.ini`` -> ``<tmp>/settings.ini``): the file name is
part of the fault, the directory is not.

It runs at ingest, once per failure, so it is compiled regexes only, and the
masks that need a digit are skipped for text without one (measured by
``bench/triage.py``). The text is untrusted: every pattern is linear in it
(``tests/triage/test_normalise.py`` feeds the inputs that made earlier
patterns quadratic).
"""

from __future__ import annotations

import re

__all__ = ["normalise_message"]

_PATH_CHAR = r"[^/\\\s'\"(),;:<>\]\[]"
_TEMP = re.compile(
    # The temporary root...
    r"(?:[A-Za-z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp"
    r"|(?:/private)?(?:/var/folders/" + _PATH_CHAR + r"+/" + _PATH_CHAR + r"+/T"
    r"|/tmp|/var/tmp|/dev/shm))"
    # ...the directory made in it (tempfile's tmpXXXXXXXX, pytest-of-USER, any name)...
    r"(?:[/\\]" + _PATH_CHAR + r"+)?"
    # ...and pytest's numbered levels below that (pytest-12, popen-gw3, tmp...).
    r"(?:[/\\](?:pytest-\d+|popen-gw\d+|tmp" + _PATH_CHAR + r"*))*"
)
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_DATE = re.compile(
    r"\bdatetime\.(?:datetime|date|time)\([^()]*(?:\([^()]*\)[^()]*)*\)"
    r"|\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_TIME = re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b")
_IPV6 = re.compile(
    r"(?<![\w:])(?:"
    r"(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}"
    r"|(?:[0-9a-fA-F]{1,4}:){1,7}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,5})?"
    r"|::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})?"
    r")(?![\w:])"
)
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
# A host starts where no host character precedes it (not at every \b: "a-a-a-..."
# would be rescanned from each dash).
_PORT = re.compile(
    r"(<ip>|\]|(?<![\w.-])localhost|(?<![\w.-])[A-Za-z][\w-]*(?:\.[\w-]+)+):\d{1,5}\b"
)
# The lookahead finds the digit once; "[0-9a-f]*[0-9][0-9a-f]*" would backtrack
# quadratically over a long run of digits glued to a letter.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9])(?=[a-fA-F]*[0-9])[0-9a-fA-F]+(?:\.[0-9]+)?"
    r"(?:ns|us|µs|ms|s|m|h|d|[kKMGT]i?B|[kKMGT]|%)?(?![A-Za-z0-9])"
)
_DIGIT = re.compile(r"[0-9]")
_COLON_DIGIT = re.compile(r":[0-9]")


def normalise_message(text: str) -> str:
    """``text`` with its varying values masked (see the module docstring)."""
    # Each mask runs only when a cheap substring test says it could match: most
    # messages are short and hold one or two kinds of value.
    if ("/tmp" in text or "/var/" in text or "/dev/shm" in text or "Temp" in text) and (
        "/" in text or "\\" in text
    ):
        text = _TEMP.sub("<tmp>", text)
    if _DIGIT.search(text) is None:
        return text
    if "0x" in text:
        text = _ADDRESS.sub("<addr>", text)
        text = _HEX.sub("<hex>", text)
    if "-" in text:
        text = _UUID.sub("<uuid>", text)
        text = _DATE.sub("<date>", text)
    elif "datetime" in text:
        text = _DATE.sub("<date>", text)
    colon = _COLON_DIGIT.search(text) is not None
    if colon:
        text = _TIME.sub("<time>", text)
    if "::" in text or text.count(":") >= 7:
        text = _IPV6.sub("<ip>", text)
    if "." in text:
        text = _IPV4.sub("<ip>", text)
    if colon:
        text = _PORT.sub(r"\1:<port>", text)
    return _NUMBER.sub("<n>", text)
