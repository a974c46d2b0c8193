"""The report's reward-model section: every population and model with stored audits, overall figures only."""

from __future__ import annotations

from curation.audit.metrics import ModelAudit
from curation.audit.population import WORKSPACE, AuditUnit, ReleaseRef, release_units, workspace_units
from curation.audit.summary import figures_of
from curation.core.workspace import Workspace
from exports.versions import folder_name, release_id


def population_of(ws: Workspace, population: str) -> list[AuditUnit] | None:
    """The units of a stored population: the workspace's pairs, or a release's rows (None when its folder or
    record is gone or no longer matches the audited content)."""
    if population == WORKSPACE:
        return workspace_units(ws)
    version, _, digest = population.removeprefix("v").partition("@")
    record = ws.store.get("release", release_id(version))
    folder = ws.exports_dir / folder_name(version)
    if record is None or not record["content_hash"].startswith(digest) or not folder.is_dir():
        return None
    return release_units(ReleaseRef(record["version"], record["content_hash"], folder))


def stored_audits(ws: Workspace) -> list[ModelAudit]:
    """Figures for each (population, model) with audit records, populations in name order."""
    pairs = sorted({(r["population"], r["model"]) for r in ws.store.iter("audit")})
    audits: list[ModelAudit] = []
    units_of: dict[str, list[AuditUnit] | None] = {}
    for population, model in pairs:
        if population not in units_of:
            units_of[population] = population_of(ws, population)
        units = units_of[population]
        if units is not None:
            audits.append(figures_of(ws, population, model, units, model, breakdowns=False))
    return audits
