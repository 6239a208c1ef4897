"""Durable, atomic file writes and content hashes for the policy store.

A reader must never see half a file or a pointer to half a version, even if the machine
loses power mid-write: each file is written to a temporary name in its own directory,
flushed and fsynced, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows), and the directory is fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "dump_json",
    "exclusive_lock",
    "fsync_dir",
    "read_json",
    "sha256_file",
    "write_atomic",
    "write_durable",
]


def dump_json(value: Any) -> bytes:
    """The store's one JSON form: sorted keys would reorder a DPO's document, so keep order."""
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_durable(path: Path, content: bytes) -> None:
    """Write a new file and fsync it (for files inside a directory not yet visible)."""
    with path.open("xb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomic(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` so that readers see the old file or the new one."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """One writer at a time across processes (two DPOs publishing at once take turns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
