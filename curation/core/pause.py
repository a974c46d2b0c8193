"""Pause points: named instants of a stage's execution at which a process can be made to stop and wait.

The kill tests need a SIGKILL to land at a known instant of a known stage, whatever the machine's speed. With
`WIDESPEC_PAUSE_AT=<stage>:<point>` in its environment a process that reaches that point writes the point's name
to `.widespec/paused-at` and sleeps until it is killed. The points (`curation.core.executor`):

    started    the stage's ledger run is open, nothing of it is stored yet
    computed   an output is computed (an export's folder is built) and not yet committed
    journaled  an output's transaction committed, the folders it renames into place are not yet moved
    committed  an output is committed and its folders moved; more may follow
    finishing  every output is committed; the ledger run is not yet closed

Unset, as in every normal use, a pause point costs one environment lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from curation.core.files import write_atomic

PAUSE_ENV = "WIDESPEC_PAUSE_AT"
PAUSED_FILE = "paused-at"
PAUSE_LIMIT_S = 600.0  # a process nobody kills gives up waiting and fails


def pause_point(runtime_dir: Path, stage: str, point: str) -> None:
    """Stop here until killed when `WIDESPEC_PAUSE_AT` names this stage's point."""
    name = f"{stage}:{point}"
    if os.environ.get(PAUSE_ENV) != name:
        return
    runtime_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(runtime_dir / PAUSED_FILE, name)
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise RuntimeError(f"paused at {name} for {PAUSE_LIMIT_S:g} s and nobody killed the process")
