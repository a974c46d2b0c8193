"""How many rows the next export would add or remove against the latest release."""

from __future__ import annotations

import pyarrow.parquet as pq

from curation.core.judges import configured_judge
from curation.core.workspace import Workspace
from curation.domain.evidence import pair_records
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
    _, records = pair_records(ws.store, configured_judge(ws), scores=False)
    cfg = ws.settings.export
    return {r.pair.id for r in records if left_out(r, scope, cfg) is None and r.fate(cfg.rows).placement == "train"}


def pending_export(ws: Workspace, scope: ReleaseScope | None = None) -> int:
    """Rows the next release would add or remove against the latest release (a pair rejected, superseded,
    blocked or flagged since then is a removal)."""
    return len(next_release_ids(ws, scope) ^ released_ids(ws))
