"""What every command module shares: the global options' state, opening the workspace, JSON output, help panels."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curation.core.workspace import Workspace, open_workspace

WORKSPACE, STAGES, RELEASES = "Workspace", "Stages", "Releases"


class State:
    workspace: Path = Path(".")


state = State()


@contextmanager
def opened() -> Iterator[Workspace]:
    ws = open_workspace(state.workspace)
    try:
        yield ws
    finally:
        ws.close()


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
