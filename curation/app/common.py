"""What every command module shares: the global options' state, opening the workspace, JSON output, help panels."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curation.core.errors import InputError
from curation.core.workspace import Workspace, open_workspace

WORKSPACE, STAGES, RELEASES = "Workspace", "Stages", "Releases"


class State:
    workspace: Path = Path(".")


state = State()


# `--executor` of generate, score and run: overrides `[executor] kind` for one run (the file is left as it is).
EXECUTOR_HELP = "Run the compute here (local) or on Ray actors (ray), overriding executor.kind for this run."


@contextmanager
def opened(executor: str | None = None) -> Iterator[Workspace]:
    ws = open_workspace(state.workspace)
    if executor is not None:
        if executor not in ("local", "ray"):
            ws.close()
            raise InputError(f"--executor {executor!r}: expected local or ray")
        ws.config["executor"]["kind"] = executor
    try:
        yield ws
    finally:
        ws.close()


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
