"""How many rows the next export would add or remove against the latest release."""

from __future__ import annotations

import pyarrow.parquet as pq

from curation.core.judges import configured_judge
from curation.core.workspace import Workspace
from curation.domain.evidence import current_evidence
from curation.domain.fate import fate
from exports.rows import left_out
from exports.scope import ReleaseScope
from exports.versions import folder_name, latest_release


def released_ids(ws: Workspace) -> set[str]:
    """Row ids of the latest release (read from its shards' id column only)."""
    latest = latest_release(ws.store)
    if latest is None:
        return set()
    folder = ws.exports_dir / folder_name(latest["version"]) / "data"
    return {
        i
        for path in sorted(folder.glob("train-*.parquet"))
        for i in pq.read_table(path, columns=["id"])["id"].to_pylist()
    }


def next_release_ids(ws: Workspace, scope: ReleaseScope | None = None) -> set[str]:
    """The row ids the next release's default config would hold: current pairs within `scope` whose fate puts
    them in the release."""
    scope = scope or ReleaseScope()
    cfg = ws.settings.export
    return {
        pair["id"]
        for pair, evidence in current_evidence(ws.store, configured_judge(ws))
        if left_out(pair["model"], evidence.verdicts, scope, cfg) is None
        and fate(evidence, cfg.rows).placement == "train"
    }


def pending_export(ws: Workspace, scope: ReleaseScope | None = None) -> int:
    """Rows the next release would add or remove against the latest release (a pair rejected, superseded,
    blocked or flagged since then is a removal)."""
    return len(next_release_ids(ws, scope) ^ released_ids(ws))
