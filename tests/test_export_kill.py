"""A release is whole or absent at every instant: an export killed (SIGKILL-like, `os._exit`) just before its
records commit leaves no release, one killed between the commit and the folder's rename is finished by the next
command that opens the workspace, and the next export goes on by itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.synthetic_releases import PairSpec, add_pairs
from curation.core.workspace import Workspace, open_workspace
from exports.export import export_version
from exports.manifest import folder_manifest

pytestmark = pytest.mark.slow

# The process dies at `instant` of the export of 0.1.0, as a kill would: no handler, no rollback, no cleanup.
KILLED_EXPORT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    root, instant = Path(sys.argv[1]), sys.argv[2]
    from curation.core import store as store_module
    from curation.core.workspace import open_workspace
    from exports.export import export_version

    if instant == "before-commit":
        put = store_module.Store.put
        def dying_put(self, kind, records, **kw):
            if kind == "release":
                os._exit(9)
            return put(self, kind, records, **kw)
        store_module.Store.put = dying_put
    else:
        rename = Path.rename
        def dying_rename(self, target):
            if Path(target).name == "v0.1.0":
                os._exit(9)
            return rename(self, target)
        Path.rename = dying_rename
    export_version(open_workspace(root), "0.1.0")
    """
)


def killed_export(root: Path, instant: str) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(root), instant], capture_output=True, timeout=300)
    assert done.returncode == 9, done.stderr.decode()


@pytest.fixture
def root(workspace: Workspace) -> Path:
    add_pairs(workspace, [PairSpec()] * 4)
    workspace.close()
    return workspace.root


def test_killed_before_the_commit_leaves_no_release_and_the_next_export_goes_on(root: Path) -> None:
    killed_export(root, "before-commit")
    with open_workspace(root) as ws:
        assert ws.store.count("release") == 0 and not (ws.exports_dir / "v0.1.0").exists()
        release = export_version(ws, "0.1.0")  # the same version: nothing of the killed export stands in its way
        assert release.path.is_dir() and [p.name for p in ws.exports_dir.iterdir()] == ["v0.1.0"]


def test_killed_between_the_commit_and_the_rename_is_finished_by_the_next_command(root: Path) -> None:
    killed_export(root, "before-rename")
    assert not (root / "exports" / "v0.1.0").exists()  # the record committed, the folder was not in place yet
    with open_workspace(root) as ws:  # any command: opening the workspace finishes what the commit owed
        [record] = ws.store.iter("release")
        folder = ws.exports_dir / "v0.1.0"
        assert folder.is_dir() and folder_manifest(folder) == record["manifest"]
        assert [p.name for p in ws.exports_dir.iterdir()] == ["v0.1.0"]
