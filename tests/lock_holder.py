"""Another process that holds a workspace's write lock (as a running `widespec run` does) for the test's duration."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from curation.core.workspace import Workspace

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from curation.core.lock import workspace_lock
    from curation.core.store import Store
    store = Store(Path(sys.argv[1]) / "widespec.db")
    with workspace_lock(Path(sys.argv[1]) / ".widespec", sys.argv[2], shard=sys.argv[3] or None):
        store.start_run("toy", "hash")
        print("holding", flush=True)
        time.sleep(60)
    """
)


@contextmanager
def holder(ws: Workspace, mode: str = "exclusive", shard: str = "") -> Iterator[subprocess.Popen[str]]:
    """A process holding the lock (its ledger run reads `running`) until the block ends; it is killed then."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ws.root), mode, shard], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "holding"
        yield process
    finally:
        process.kill()
        process.wait()
