"""`export --with-audit`: the reward models audit the workspace's pairs first, then the new release carries the
audit of exactly its rows (the same pairs, read with the same prompts and images)."""

from __future__ import annotations

from collections.abc import Sequence

from curation.audit.population import workspace_units
from curation.audit.publishing import AUDIT_DIR, accuracy_plot, card_section, file_stem, scores_table, summary_json
from curation.audit.specs import resolve_names
from curation.audit.stage import AuditOptions, audit
from curation.audit.summary import summarise
from curation.core.console import info
from curation.core.errors import InputError
from curation.core.workspace import Workspace
from exports.export import Attach, Attachment


def audit_attachment(ws: Workspace, names: str) -> Attach:
    """Audit every current pair with each named model, and return what the export attaches for its rows."""
    audited: list[tuple[AuditOptions, str]] = []
    specs = resolve_names(names, ws.settings.audit.models)
    stems = [file_stem(spec.name) for spec in specs]
    if len(set(stems)) < len(stems):
        raise InputError(f"--with-audit {names}: two models would write the same audit/<model>.parquet; rename one")
    for spec in specs:
        options = AuditOptions(spec)
        result = audit(ws, options)
        info(f"audit {spec.name}: {result.summary}")
        audited.append((options, str(result.details["model"])))

    def attach(reader: Workspace, row_ids: Sequence[str]) -> Attachment:
        wanted = set(row_ids)
        units = [u for u in workspace_units(reader) if u.pair_id in wanted]
        units.sort(key=lambda u: u.pair_id)
        audits = [summarise(reader, options, model, units=units) for options, model in audited]
        files = {
            f"{AUDIT_DIR}/{file_stem(options.spec.name)}.parquet": scores_table(
                reader.store, options.population, model, units
            )
            for options, model in audited
        }
        files[f"{AUDIT_DIR}/summary.json"] = summary_json(audits, len(units))
        plot = f"{AUDIT_DIR}/accuracy.png"
        files[plot] = accuracy_plot(audits)
        return Attachment(files, card_section(audits, plot))

    return attach
