"""``datatrust backup`` and ``datatrust restore``: one node to one archive, and back.

The work is in :mod:`datatrust._backup`; these commands parse options, show each step as
it happens and say at the end what the archive holds, or that the restored node's audit
chain verifies and where it continues from.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from datatrust._console import console

__all__ = ["backup_command", "restore_command"]

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", help="Data directory of the trust.", envvar="DATATRUST_DATA_DIR"),
]
DEFAULT_DATA_DIR = Path(".datatrust")


class _Steps:
    """Each step as a line with its time, under a spinner for the step in progress."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=None)
        self.started = time.perf_counter()

    def __call__(self, words: str) -> None:
        seconds = time.perf_counter() - self.started
        self.progress.console.print(f"[green]✓[/] {words} [dim]({seconds:.1f} s)[/]")
        self.progress.update(self.task, description=words)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def backup_command(
    node: Annotated[str, typer.Option(help="The node to back up (council, health, social-care).")],
    to: Annotated[Path, typer.Option("--to", help="The archive to write (.tar.gz).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Back up a node (store, keys, audit head, settings) to one .tar.gz archive."""
    from datatrust._backup import back_up_node

    with _progress() as progress:
        result = back_up_node(data_dir, node, to.resolve(), on_step=_Steps(progress))
    manifest = result.manifest
    head = manifest.audit_head
    console.print(
        f"Backed up the {manifest.node} node to {result.archive} "
        f"({result.size_bytes / 1_000_000:.1f} MB, {len(manifest.members)} members, "
        f"schema revision {', '.join(manifest.schema_revisions) or 'none'}, "
        + (f"audit head seq {head.seq})." if head else "no audit entries yet)."),
        highlight=False,
        soft_wrap=True,
    )
    for item in result.left_out:
        console.print(
            f"Not in the archive (outside the data dir; back it up yourself): {item}",
            highlight=False,
            soft_wrap=True,
        )


def restore_command(
    archive: Annotated[
        Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="The backup.")
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    node: Annotated[
        str | None, typer.Option(help="Refuse unless the archive is of this node.")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Restore the store into this database (default: the settings' own)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the node's data already in the target.")
    ] = False,
) -> None:
    """Restore a node from a backup, migrate it up if older, and verify its audit chain."""
    from datatrust._backup import restore_node

    with _progress() as progress:
        result = restore_node(
            archive,
            data_dir,
            node=node,
            force=force,
            database_url=database_url,
            on_step=_Steps(progress),
        )
    manifest = result.manifest
    head = manifest.audit_head
    continues = (
        f"head seq {head.seq} ({head.entry_hash[:12]}...); new entries continue from it"
        if head
        else "no entries yet"
    )
    console.print(
        f"Restored the {manifest.node} node into {result.data_dir} "
        f"(store {result.database_url}). Audit chain verified: "
        f"{result.entries_verified} entries, {continues}.",
        highlight=False,
        soft_wrap=True,
    )
