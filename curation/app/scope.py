"""The release scope of a workspace: the generators `generator.models` names, resolved as their renders record
them (the app's job, since it may read both the generate and the export stage)."""

from __future__ import annotations

from collections import Counter

from curation.core.workspace import Workspace
from curation.generate.stage import model_specs
from exports.scope import ReleaseScope


def release_scope(ws: Workspace) -> ReleaseScope:
    return ReleaseScope.of(spec.model for spec in model_specs(ws))


def out_of_scope(ws: Workspace) -> dict[str, int]:
    """Pairs in the store that a release leaves out, by reason (for `widespec status`)."""
    scope = release_scope(ws)
    found: Counter[str] = Counter()
    for model, count in ws.store.counts_by("pair", "model", status="current").items():
        if (reason := scope.excluded(model)) is not None:
            found[reason] += count
    return dict(sorted(found.items()))
