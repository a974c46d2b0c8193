"""How many pairs the next export would add: selected pairs not in the latest release."""

from __future__ import annotations

import pyarrow.parquet as pq

from curation.core.judges import configured_judge
from curation.core.workspace import Workspace
from exports.rows import left_out, placement
from exports.scope import ReleaseScope
from exports.source import pair_records
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


def pending_export(ws: Workspace, scope: ReleaseScope | None = None) -> int:
    """Selected pairs within `scope` that the latest release does not hold."""
    scope = scope or ReleaseScope()
    released = released_ids(ws)
    _, records = pair_records(ws.store, judge=configured_judge(ws))
    cfg = ws.settings.export
    return sum(
        1
        for r in records
        if r.pair.id not in released
        and left_out(r, scope, cfg) is None
        and placement(r.decisions, cfg.rows, r.verdicts, r.judgment) == "train"
    )
