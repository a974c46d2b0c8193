"""The release scope of a workspace: the generators `generator.models` names, resolved as their renders record
them (the app's job, since it may read both the generate and the export stage)."""

from __future__ import annotations

from collections import Counter

from curation.core.pairs import iter_pairs
from curation.core.workspace import Workspace
from curation.generate.stage import model_specs
from exports.scope import ReleaseScope


def release_scope(ws: Workspace) -> ReleaseScope:
    return ReleaseScope.of(spec.model for spec in model_specs(ws))


def out_of_scope(ws: Workspace) -> dict[str, int]:
    """Pairs in the store that a release leaves out, by reason (for `widespec status`)."""
    scope = release_scope(ws)
    found: Counter[str] = Counter()
    for pair in iter_pairs(ws.store):
        if (reason := scope.excluded(pair.generator)) is not None:
            found[reason] += 1
    return dict(sorted(found.items()))
