"""A private PostgreSQL cluster that a fault test may stop and start at will.

The machine's server at 127.0.0.1:5432 is shared with every other test, so a test that
restarts a database under a node gets a cluster of its own: ``initdb`` in a temporary
directory, ``pg_ctl`` on a free loopback port, owned by the ``postgres`` account (initdb
refuses to run as root). fsync is off: the tests restart the server with ``-m fast``,
a clean shutdown, so nothing relies on it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from datatrust._ports import free_port

__all__ = ["PrivatePostgres", "postgres_binaries_missing"]

_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _binary(name: str) -> str | None:
    for folder in _BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def postgres_binaries_missing() -> str | None:
    """Why no private cluster can be made here, or None when one can."""
    missing = [name for name in ("initdb", "pg_ctl") if _binary(name) is None]
    if missing:
        return f"no PostgreSQL server binaries ({', '.join(missing)}) on this machine"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' account to own a cluster"
    return None


class PrivatePostgres:
    """One cluster: ``start``, ``stop`` (fast shutdown), ``admin_url`` for the superuser."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="datatrust-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "server.log"
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run(_binary("initdb"), "-A", "trust", "-U", "postgres", "--no-sync", "-D", self.data)

    def url(self, user: str = "postgres", database: str = "postgres") -> str:
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(_binary("pg_ctl"), "-D", self.data, "-l", self.log, "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run(_binary("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(_binary("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, *argv: object) -> None:
        command = [str(a) for a in argv]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr}{result.stdout}{log}")
