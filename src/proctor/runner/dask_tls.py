"""The TLS context a run listens with for its servers on a ``tls://`` Dask cluster,
made of the client-side settings the warm agent reports
(:mod:`proctor.runner.dask_agent`), as ``distributed.security.Security`` makes it
(a run that holds a ``distributed.Client`` itself asks the client instead)."""

from __future__ import annotations

import os
import ssl
from typing import Any

__all__ = ["tls_listen_context"]


def tls_listen_context(tls: dict[str, Any]) -> ssl.SSLContext:
    """The server-side context Dask makes of a role's TLS settings
    (``distributed.security.Security``: its CA, its certificate and key, the
    client's certificate required, no host name check, its versions and ciphers)."""
    ca, cert, key = tls.get("ca_file"), tls.get("cert"), tls.get("key")
    if not ca or not cert:
        raise ValueError(
            "it uses tls://, but no client certificate is configured here "
            "(distributed.comm.tls.client in Dask's configuration)"
        )
    purpose = ssl.Purpose.CLIENT_AUTH
    if "\n" in ca:
        context = ssl.create_default_context(purpose=purpose, cadata=ca)
    else:
        context = ssl.create_default_context(purpose=purpose, cafile=ca)
    context.minimum_version = ssl.TLSVersion(int(tls["min_version"]))
    if tls.get("max_version") is not None:
        context.maximum_version = ssl.TLSVersion(int(tls["max_version"]))
    if "\n" in cert or (key is not None and "\n" in key):
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            cert_path = _pem(scratch, "dask.crt", cert)
            key_path = None if key is None else _pem(scratch, "dask.pem", key)
            context.load_cert_chain(cert_path, key_path)
    else:
        context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = False
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    if tls.get("ciphers"):
        context.set_ciphers(str(tls["ciphers"]))
    return context


def _pem(directory: str, name: str, text: str) -> str:
    if "\n" not in text:
        return text  # a path
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as file:
        file.write(text)
    return path
