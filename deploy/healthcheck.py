"""Container health check: ``python healthcheck.py URL [--config SETTINGS.toml]``.

Exits 0 when an http(s) URL answers 2xx (our health endpoints answer 200), or a
``tcp://HOST:PORT`` URL accepts a connection (the MQTT subscriber's broker), else 1 with
the reason on stderr. With ``--config``, the
request presents the TLS material that settings file names (``tls_cert``, ``tls_key``,
``tls_ca``): a node serves mutual TLS only, and admits the probe because its own certificate
is listed in the trust directory. Standard library only, so it runs in the image as is
(the Dockerfile copies it to /usr/local/lib/datatrust/healthcheck.py).
"""

from __future__ import annotations

import socket
import ssl
import sys
import tomllib
import urllib.error
import urllib.request
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 3


def _context(config: str | None) -> ssl.SSLContext | None:
    if config is None:
        return None
    with open(config, "rb") as handle:
        settings = tomllib.load(handle)
    if "tls_cert" not in settings:
        return None
    context = ssl.create_default_context(cafile=settings["tls_ca"])
    context.load_cert_chain(settings["tls_cert"], settings["tls_key"])
    return context


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--config"):
        print("usage: healthcheck.py URL [--config SETTINGS.toml]", file=sys.stderr)
        return 2
    url, config = argv[0], (argv[2] if len(argv) == 3 else None)
    try:
        if url.startswith("tcp://"):
            parts = urlsplit(url)
            socket.create_connection((parts.hostname, parts.port), TIMEOUT_SECONDS).close()
            return 0
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS, context=_context(config)):  # noqa: S310
            return 0  # urlopen raises for every status but 2xx
    except urllib.error.HTTPError as error:
        print(
            f"{url}: HTTP {error.code}: {error.read(500).decode(errors='replace')}", file=sys.stderr
        )
    except (OSError, ValueError, KeyError) as error:
        print(f"{url}: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
