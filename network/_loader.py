"""Loading the signed directory from a file, at start and whenever the file changes.

A node keeps serving with its last good directory when a new file is tampered with, expired,
or older than the one in use (a replayed old directory could re-admit a removed member),
and says why. It never runs without a good directory, and never on an expired one: when the
last good directory expires too, every peer is refused until the operator signs a fresh one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import ECKey

from datatrust.network._directory import TrustDirectory
from datatrust.network._errors import DirectoryError
from datatrust.network._signing import verify_directory

__all__ = ["DirectoryLoad", "DirectoryWatcher", "load_directory"]

logger = logging.getLogger("datatrust.network")


@dataclass(frozen=True)
class DirectoryLoad:
    """The directory in force after a load, and why the file was refused if it was."""

    directory: TrustDirectory
    is_from_file: bool
    """False when the file was refused and ``directory`` is the last good one, kept."""
    problem: str | None = None


def load_directory(
    path: Path,
    operator_public_key: ECKey,
    last_good: TrustDirectory | None = None,
    *,
    now: dt.datetime | None = None,
) -> DirectoryLoad:
    """Verify the signed directory in ``path``; on failure keep ``last_good`` if it still holds.

    Raises ``DirectoryError`` when the file is refused and there is no usable last good
    directory (none, or expired too).
    """
    now = now or dt.datetime.now(dt.UTC)
    try:
        directory = verify_directory(_read(path), operator_public_key, now=now)
        if last_good is not None:
            _check_not_older(directory, last_good)
        return DirectoryLoad(directory, is_from_file=True)
    except DirectoryError as error:
        problem = f"{path}: {error.message}"
        if last_good is None:
            raise DirectoryError(problem) from error
        if now >= last_good.expires_at:
            raise DirectoryError(
                f"{problem}; and the last good directory (version {last_good.version}) expired "
                f"at {last_good.expires_at.isoformat()}, so no peer is accepted"
            ) from error
        logger.warning(
            "refused the trust directory %s; keeping version %d", problem, last_good.version
        )
        return DirectoryLoad(
            last_good,
            is_from_file=False,
            problem=f"{problem} (keeping version {last_good.version})",
        )


class DirectoryWatcher:
    """The current directory of one process: loaded at start, reloaded when the file changes.

    Call it (or ``current()``) on every request: the file's status is checked at most once per
    ``check_interval_seconds``, so that costs a clock read. Raises ``DirectoryError`` when the
    directory in force has expired.
    """

    def __init__(
        self,
        path: Path,
        operator_public_key: ECKey,
        *,
        check_interval_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.path = path
        self._key = operator_public_key
        self._interval = check_interval_seconds
        self._monotonic = monotonic
        self._now = now
        self._lock = threading.Lock()
        self._signature = _file_signature(path)
        loaded = load_directory(path, operator_public_key, now=now())
        self._directory = loaded.directory
        self._problem: str | None = None
        self._checked_at = monotonic()

    @property
    def problem(self) -> str | None:
        """Why the latest file was refused, while the last good directory is kept."""
        return self._problem

    @property
    def expires_at(self) -> dt.datetime:
        """When the directory in force expires (past, once it has: monitors show that)."""
        return self._directory.expires_at

    def __call__(self) -> TrustDirectory:
        return self.current()

    def current(self) -> TrustDirectory:
        if self._monotonic() - self._checked_at >= self._interval:
            with self._lock:
                self._reload_if_changed()
        directory = self._directory
        now = self._now()
        if now >= directory.expires_at:
            raise DirectoryError(
                f"the trust directory in force (version {directory.version}) expired at "
                f"{directory.expires_at.isoformat()}; no peer is accepted until the operator "
                f"signs a fresh one into {self.path}"
            )
        return directory

    def _reload_if_changed(self) -> None:
        self._checked_at = self._monotonic()
        signature = _file_signature(self.path)
        if signature == self._signature:
            return
        self._signature = signature
        loaded = load_directory(self.path, self._key, self._directory, now=self._now())
        self._directory, self._problem = loaded.directory, loaded.problem
        if loaded.is_from_file:
            logger.info(
                "trust directory version %d loaded from %s", loaded.directory.version, self.path
            )


def _check_not_older(directory: TrustDirectory, last_good: TrustDirectory) -> None:
    if directory.version < last_good.version:
        raise DirectoryError(
            f"version {directory.version} is older than the directory in force (version "
            f"{last_good.version}); an old directory may not replace a newer one"
        )
    if directory.version == last_good.version and directory != last_good:
        raise DirectoryError(
            f"version {directory.version} is already in force with different content; the "
            "operator must raise the version for every change"
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise DirectoryError("no signed directory here: run datatrust init") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DirectoryError(f"cannot read the signed directory: {error}") from error


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)
