"""Shared fixtures. Hugging Face libraries are kept offline and away from the user's cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HF_HOME = tempfile.mkdtemp(prefix="widespec-test-hf-")
# Read at import time by huggingface_hub and datasets: set before anything imports them.
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.pop("WIDESPEC_WORKSPACE", None)

import pytest  # noqa: E402

from curation.core.workspace import Workspace, init_workspace  # noqa: E402

# Fixture modules registered once for the whole session: a session fixture (the Label Studio server, the tiny
# models) is then built once, however many test files use it. Test files ask for these fixtures by name and never
# import them (an imported fixture is a second copy, built again for that file).
pytest_plugins = ["tests.annotation_fixtures", "tests.generate_fixtures", "tests.rewrite_fixtures"]


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh workspace with the default configuration."""
    ws = init_workspace(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture
def released(workspace: Workspace) -> Workspace:
    """A workspace with six pairs (three with human verdicts) and their release v1.0.0."""
    from exports.export import export_version
    from tests.dataset_fixtures import populate

    populate(workspace, 6)
    export_version(workspace, "1.0.0")
    return workspace
