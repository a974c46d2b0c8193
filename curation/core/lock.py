"""One writer per workspace: an OS file lock that dies with its process, so a stale lock never blocks.

A stage (or `widespec run`) holds the lock exclusively. `--shard i/n` processes are explicit co-writers that split
the work between them: they share the lock with each other and exclude every other writer. Read-only commands
take no lock. Each holder leaves a small note (pid, command, since) so a refused writer can name it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from curation.core.errors import WidespecError
from curation.core.ids import canonical_json
from curation.core.process import process_alive, process_token
from curation.core.store import utc_now

Mode = Literal["exclusive", "shared"]
LOCK_FILE = "lock"
HOLDERS_DIR = "lock-holders"


class WorkspaceBusy(WidespecError):
    """Another process writes to this workspace; exit code 1."""

    exit_code = 1


def command_line() -> str:
    """The running command as a user would recognise it (`widespec run`): its words, no paths or option values."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    program = "widespec" if name in {"widespec", "-c", "-m", "__main__.py", "cli.py"} else name
    words, skip = [], False
    for word in sys.argv[1:]:
        if skip:
            skip = False
        elif word in {"-w", "--workspace"}:
            skip = True
        elif not word.startswith("-"):
            words.append(word)
    return " ".join([program, *words[:3]])


def holders(runtime_dir: Path) -> list[dict[str, Any]]:
    """Notes of the processes holding the lock now (notes of dead processes are ignored)."""
    found = []
    for note in sorted((runtime_dir / HOLDERS_DIR).glob("*.json")):
        try:
            data = json.loads(note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if process_alive(int(data.get("pid", 0)), data.get("token")):
            found.append(data)
    return found


def describe_holders(found: list[dict[str, Any]]) -> str:
    if not found:
        return "another process (it left no note)"
    return "; ".join(
        f"`{h['command']}` (pid {h['pid']}{', shard ' + h['shard'] if h.get('shard') else ''}) since {h['since']}"
        for h in found
    )


@contextmanager
def workspace_lock(runtime_dir: Path, mode: Mode = "exclusive", *, shard: str | None = None) -> Iterator[None]:
    """Hold the workspace's write lock, or raise WorkspaceBusy at once naming the holder."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    notes = runtime_dir / HOLDERS_DIR
    notes.mkdir(exist_ok=True)
    fd = os.open(runtime_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if mode == "exclusive" else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            found = holders(runtime_dir)
            hint = " (shards of one generate pass may run together; nothing else may)" if shard else ""
            raise WorkspaceBusy(
                f"{runtime_dir.parent}: workspace is busy: {describe_holders(found)} is writing to it{hint}; "
                "wait for it to finish or stop it, then rerun"
            ) from None
        note = notes / f"{os.getpid()}.json"
        info = {"pid": os.getpid(), "token": process_token(os.getpid()), "command": command_line(), "since": utc_now()}
        if shard:
            info["shard"] = shard
        note.write_text(canonical_json(info), encoding="utf-8")
        try:
            yield
        finally:
            note.unlink(missing_ok=True)
    finally:
        os.close(fd)  # closing the descriptor releases the lock; so does the process dying
