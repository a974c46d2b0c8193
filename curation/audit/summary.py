"""From stored audit records to the figures of each reward model over a population (the table `widespec audit`
prints, the JSON it emits and what a release's card shows)."""

from __future__ import annotations

from collections.abc import Sequence

from curation.audit.metrics import ModelAudit, Scored, model_audit
from curation.audit.population import AuditUnit, facets
from curation.audit.stage import AuditOptions, audit, audits_of, population_units
from curation.core.records import AUDIT_COMBINATIONS
from curation.core.stage import StageResult
from curation.core.taxonomy import load_taxonomy
from curation.core.workspace import Workspace


def is_circular(model: str, units: Sequence[AuditUnit]) -> bool:
    """Whether `model` is the CLIP scorer that filtered these pairs (so it ranks the anti image first by
    construction on the pairs it accepted)."""
    scorers = {scorer for unit in units for scorer in unit.filter_scorers}
    return any(model in (f"clip:{scorer}", scorer) for scorer in scorers)


def summarise(
    ws: Workspace, options: AuditOptions, model: str, *, units: Sequence[AuditUnit] | None = None
) -> ModelAudit:
    """The figures of `model` (a resolved id) over the population `options` names, from the store."""
    units = population_units(ws, options) if units is None else units
    return figures_of(ws, options.population, model, units, options.spec.name)


def figures_of(
    ws: Workspace, population: str, model: str, units: Sequence[AuditUnit], name: str, *, breakdowns: bool = True
) -> ModelAudit:
    """The figures of `model`'s stored audits of `units` in `population`."""
    taxonomy = load_taxonomy(ws.settings.taxonomy.path, ws.root)
    families = {d.id: d.family for d in taxonomy.dimensions.values()}
    scored: list[Scored] = []
    failed = truncated = 0
    for unit, record in zip(units, audits_of(ws.store, population, model, units), strict=True):
        if record is None or record["status"] != "ok":
            failed += record is not None
            continue
        truncated += bool(record.get("truncated"))
        anti_anti, base_anti, anti_base, base_base = (record["scores"][c] for c in AUDIT_COMBINATIONS)
        scored.append(Scored(anti_anti, base_anti, anti_base, base_base, facets(unit, families)))
    section = ws.settings.audit
    return model_audit(
        name,
        model,
        population,
        scored,
        failed=failed,
        truncated=truncated,
        circular=is_circular(model, units),
        seed=ws.settings.project.seed,
        rounds=section.bootstrap_rounds,
        breakdowns=breakdowns,
    )


def audit_population(ws: Workspace, options: AuditOptions) -> tuple[StageResult, ModelAudit]:
    """Audit the pending pairs with one model, then summarise every audited pair of the population."""
    result = audit(ws, options)
    return result, summarise(ws, options, str(result.details["model"]))
