"""`widespec export`, `widespec diff`, `widespec publish`: versioned Hugging Face dataset releases."""

from __future__ import annotations

from typing import Annotated

import typer

from curation.app.common import RELEASES, emit_json, opened
from curation.core.console import out_console

app = typer.Typer()  # its commands are added to the main app by curation.app.cli


@app.command(rich_help_panel=RELEASES)
def export(
    version: Annotated[str, typer.Option("--version", help="Semantic version of the release, e.g. 1.0.0.")],
    notes: Annotated[str | None, typer.Option(help="Curator's notes appended to the drafted changelog.")] = None,
    with_audit: Annotated[
        str | None,
        typer.Option(
            "--with-audit",
            help="Reward models (as for `widespec audit --models`) whose audit of the release's rows goes into it: "
            "audit/<model>.parquet, audit/summary.json and a section of the card.",
        ),
    ] = None,
    accept_license_mix: Annotated[
        bool,
        typer.Option(
            "--accept-license-mix",
            help="Release images whose generator license restricts them under a dataset license that grants more "
            "(the card says so).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write exports/vX.Y.Z/: parquet shards, dataset card, plots; refuses a version that exists."""
    from curation.app.scope import release_scope
    from exports.export import export_version

    with opened() as ws:
        attach = None
        if with_audit:
            from curation.app.release_audit import audit_attachment
            from exports.versions import check_new_version

            check_new_version(ws.store, ws.exports_dir, version)  # refuse a taken version before auditing

            attach = audit_attachment(ws, with_audit)
        result = export_version(ws, version, notes, release_scope(ws), attach, accept_license_mix=accept_license_mix)
    if as_json:
        emit_json(result.as_dict())
        return
    diff = result.diff
    out_console.print(
        f"v{result.version}: {result.rows} rows ({len(diff.added)} added, {len(diff.removed)} removed, "
        f"{len(diff.changed)} changed since {('v' + result.parent) if result.parent else 'nothing'}), "
        f"{result.hard_negatives} hard negatives, {result.shards} shard(s) in {result.path}",
        highlight=False,
    )


@app.command(rich_help_panel=RELEASES)
def diff(
    old: Annotated[str, typer.Argument(help="Older version, e.g. v1.0.0.")],
    new: Annotated[str, typer.Argument(help="Newer version, e.g. v1.1.0.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full diff as JSON.")] = False,
) -> None:
    """Rows added, removed and changed (with the changed fields) between two exported versions."""
    from exports.diff import diff_versions

    with opened() as ws:
        result = diff_versions(ws.exports_dir, old, new)
    if as_json:
        emit_json(result.as_dict())
        return
    out_console.print(
        f"v{result.old} → v{result.new}: {len(result.added)} added, {len(result.removed)} removed, "
        f"{len(result.changed)} changed",
        highlight=False,
    )
    for row_id in result.added:
        out_console.print(f"+ {row_id}", highlight=False)
    for row_id in result.removed:
        out_console.print(f"- {row_id}", highlight=False)
    for row_id, fields in result.changed.items():
        out_console.print(f"~ {row_id}: {', '.join(fields)}", highlight=False)


@app.command(rich_help_panel=RELEASES)
def publish(
    version: Annotated[str, typer.Option("--version", help="Exported version to publish, e.g. 1.0.0.")],
    repo: Annotated[str, typer.Option("--repo", help="Hub dataset repo OWNER/NAME (created if missing).")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded; contact nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Upload exports/vX.Y.Z to the Hub and tag it vX.Y.Z (token from HF_TOKEN); refuses an existing tag."""
    from exports.publish import PublishResult
    from exports.publish import publish as publish_version

    with opened() as ws:
        result = publish_version(ws, version, repo, private=private, dry_run=dry_run)
    if as_json:
        emit_json(result.as_dict())
        return
    plan = result.plan if isinstance(result, PublishResult) else result
    if dry_run:
        out_console.print(
            f"would upload {len(plan.files)} files ({sum(n for _, n in plan.files)} bytes) from {plan.folder} to "
            f"dataset {plan.repo_id}{' (private if created)' if plan.private else ''} and tag {plan.tag}:",
            highlight=False,
        )
        for path, size in plan.files:
            out_console.print(f"  {path}  {size}", highlight=False)
        return
    assert isinstance(result, PublishResult)
    out_console.print(
        f"published {plan.tag} to {plan.repo_id} (commit {result.commit}); "
        f'load it with load_dataset("{plan.repo_id}", revision="{plan.tag}")',
        highlight=False,
    )
