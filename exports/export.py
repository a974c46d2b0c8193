"""`widespec export`: select rows, stream shards, draft the changelog, write the card, commit the version."""

from __future__ import annotations

import shutil
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curation.core.console import info, progress_bar, warn
from curation.core.errors import InputError
from curation.core.executor import execute
from curation.core.judges import configured_judge, gate, standing
from curation.core.model_licenses import UNKNOWN, model_license
from curation.core.scorer import configured_scorer
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.store import utc_now
from curation.core.verdicts import round_agreement
from curation.core.workspace import Workspace, open_workspace
from curation.domain.evidence import pair_records
from curation.domain.fate import Placement
from exports.card import GALLERY_DIR, CardInputs, ConfigSummary, build_card, citation_of, write_histograms
from exports.citation import citation_cff
from exports.croissant import croissant_json
from exports.derived import DERIVED_DIRECTORIES, DERIVED_FEATURES, preference_row, sft_row
from exports.diff import (
    CONFIG_DIRECTORIES,
    ContentHasher,
    Diff,
    changelog,
    diff_fingerprints,
    fingerprint,
    folder_fingerprints,
)
from exports.licenses import license_conflicts
from exports.manifest import folder_manifest
from exports.rows import build_row_and_provenance, left_out
from exports.scope import ReleaseScope
from exports.stats import ExportStats
from exports.versions import (
    check_new_version,
    folder_name,
    make_read_only,
    make_writable,
    normalise_version,
    release_id,
    release_record,
    releases,
    temp_folder,
)
from exports.writer import ShardWriter

SUPERSEDED = "superseded (rendered under an older generator identity)"
CONFIG_OF: dict[Placement, str] = {"train": "default", "hard_negative": "hard_negatives"}
RECENT_IMAGES = 8  # images kept while a row streams (its two, and a base image its sibling variants share)


@dataclass
class ExportResult:
    version: str
    parent: str | None
    path: Path
    rows: int
    hard_negatives: int
    shards: int
    content_hash: str
    diff: Diff

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "parent": self.parent,
            "path": str(self.path),
            "rows": self.rows,
            "hard_negatives": self.hard_negatives,
            "shards": self.shards,
            "content_hash": self.content_hash,
            "added": len(self.diff.added),
            "removed": len(self.diff.removed),
            "changed": len(self.diff.changed),
        }


def _write_gallery(ws: Workspace, folder: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copy the first pairs' original PNGs into folder/gallery/ for the card."""
    items = []
    for row in rows:
        entry = {"id": row["id"], "anti_prompt": row["anti_prompt"]}
        for side, column in (("base", "image_base"), ("anti", "image_anti")):
            relative = f"{GALLERY_DIR}/{row['id']}_{side}.png"
            (folder / GALLERY_DIR).mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(ws.images.read(row[column]["bytes"]))
            entry[side] = relative
        items.append(entry)
    return items


@dataclass
class Streamed:
    """What streaming the selected rows into shards produced."""

    shards: dict[str, list[Path]]
    stats: dict[str, ExportStats]
    content_hash: str
    prints: dict[str, bytes]  # default config: row id -> fingerprint
    gallery_rows: list[dict[str, Any]]
    excluded: Counter[str]  # pairs left out by the release scope, by reason
    derived: dict[str, tuple[list[Path], int]] = field(default_factory=dict)  # training configs: shards, rows


def _stream_rows(ws: Workspace, work: Path, version: str, scope: ReleaseScope) -> Streamed:
    """Select pairs, build and validate their rows, and write them into the shards of each config.

    Every image is checked against its sha256 as it is read. A missing or damaged image of a selected pair stops
    the export with one line naming it (ImageDamaged, exit 1), and no version is written: a release holds exactly
    the pairs its config selects, so leaving a pair out behind the curator's back would release another dataset
    than the one asked for, and releasing the bytes would publish an image under a hash it does not have. Restore
    the file (`widespec verify` lists every damaged one) and export again."""
    cfg = ws.settings.export
    license_id = ws.settings.project.license
    scorer = configured_scorer(ws.store, ws.settings.scorer)  # every metric of a row comes from this one scorer
    images = ws.images
    recent: OrderedDict[str, bytes] = OrderedDict()  # a row's images, which its training configs read again

    def read_png(sha256: str) -> bytes:
        """Each image read and checked once while its row streams into every config."""
        data = recent.get(sha256)
        if data is not None:
            recent.move_to_end(sha256)
            return data
        try:
            data = images.read(sha256)
        except FileNotFoundError:
            raise InputError(f"image {sha256} of a selected pair is missing from {images.root}") from None
        recent[sha256] = data
        if len(recent) > RECENT_IMAGES:
            recent.popitem(last=False)
        return data

    configs = ("default", "hard_negatives") if cfg.hard_negatives else ("default",)
    max_bytes = cfg.max_shard_mb * 2**20
    writers = {c: ShardWriter(work, CONFIG_DIRECTORIES[c], read_png, max_bytes) for c in configs}
    derived = {
        name: ShardWriter(work, DERIVED_DIRECTORIES[name], read_png, max_bytes, features=DERIVED_FEATURES[name])
        for name in cfg.training_configs
    }
    stats = {config: ExportStats() for config in writers}
    hasher = ContentHasher()
    prints: dict[str, bytes] = {}
    gallery_rows: list[dict[str, Any]] = []
    excluded: Counter[str] = Counter()
    if superseded := ws.store.count("pair", status="superseded"):
        excluded[SUPERSEDED] = superseded  # history: pairs of an older generator identity are never released
    judge = configured_judge(ws)
    total, candidates = pair_records(ws.store, judge=judge)
    with progress_bar(f"export v{version}", total, "pairs") as bar:
        for records in candidates:
            bar.advance()
            if (reason := left_out(records.pair.generator, records.verdicts, scope, cfg)) is not None:
                excluded[reason] += 1
                continue
            fate = records.fate(cfg.rows)
            if fate.placement is None or CONFIG_OF[fate.placement] not in writers:
                continue
            config = CONFIG_OF[fate.placement]
            assert fate.decided_by is not None  # a placed pair was placed by someone
            row, origin = build_row_and_provenance(records, license=license_id, scorer=scorer, decider=fate.decided_by)
            writers[config].add(row)
            stats[config].add(row, origin)
            if "preference" in derived and fate.chosen is not None:
                derived["preference"].add(preference_row(row, fate.decided_by, fate.chosen == "anti"))
            if "sft" in derived and config == "default":
                derived["sft"].add(sft_row(row))
            row_print = fingerprint(row)
            hasher.add(config, row["id"], row_print)
            if config == "default":
                prints[row["id"]] = row_print
                if len(gallery_rows) < cfg.gallery_size:
                    gallery_rows.append(row)
    shards = {config: writer.close() for config, writer in writers.items()}
    for reason, count in sorted(excluded.items()):
        warn(f"{count} pairs {reason}: left out of v{version}")
    training = {name: (writer.close(), writer.num_rows) for name, writer in derived.items()}
    return Streamed(shards, stats, hasher.hexdigest(), prints, gallery_rows, excluded, training)


def _draft_changelog(
    ws: Workspace, parent: str | None, version: str, prints: dict[str, bytes], notes: str | None
) -> tuple[Diff, str]:
    """The diff against the parent version's folder and the changelog entry drafted from it."""
    parent_folder = ws.exports_dir / folder_name(parent) if parent else None
    if parent_folder is not None and not parent_folder.is_dir():
        warn(f"{parent_folder} is missing: rows cannot be compared with v{parent}; the changelog says so")
        diff = diff_fingerprints({}, prints, None, version)
        return diff, changelog(diff, notes).replace("First release", f"Not compared with v{parent} (folder missing)")
    old = folder_fingerprints(parent_folder) if parent_folder is not None else {}
    diff = diff_fingerprints(old, prints, parent, version)
    return diff, changelog(diff, notes)


@dataclass(frozen=True)
class Attachment:
    """Files a caller adds to a version before it is sealed (paths relative to its folder), and the card section
    that describes them."""

    files: dict[str, bytes]
    card_section: str


# Given the workspace (read only) and the ids of the release's rows, what to attach to it.
Attach = Callable[[Workspace, Sequence[str]], Attachment]


@dataclass(frozen=True)
class ExportOptions:
    version: str
    notes: str | None = None
    scope: ReleaseScope = field(default_factory=ReleaseScope)  # the CLI and `widespec run`: configured generators
    attach: Attach | None = None
    accept_license_mix: bool = False


@dataclass(frozen=True)
class WriteVersion:
    """The export's compute: writes the version folder from the store (read only) into a temporary folder.

    Its one output is the release record plus the rename of the finished folder into place, which the executor
    commits in one transaction: a crash or kill at any moment leaves either the whole version or none of it.
    """

    root: Path
    parent: str | None
    options: ExportOptions  # its version normalised

    def run(self, units: Sequence[str]) -> Iterator[Output]:
        ws = open_workspace(self.root)
        work = temp_folder(ws.exports_dir, self.options.version)
        try:
            yield self._write(ws, work)
        except BaseException:
            if work.exists():
                make_writable(work)
                shutil.rmtree(work, ignore_errors=True)
            raise
        finally:
            ws.close()

    def _write(self, ws: Workspace, work: Path) -> Output:
        version, parent, cfg, options = self.options.version, self.parent, ws.settings.export, self.options
        streamed = _stream_rows(ws, work, version, options.scope)
        stats = streamed.stats
        if stats["default"].rows == 0:
            raise InputError(
                f"no pairs to export with export.rows = {cfg.rows!r}: score and filter pairs (or judge them in a "
                "human round) first"
            )
        licenses = generator_licenses(ws, stats.values())
        mix = license_conflicts(ws.settings.project.license, licenses)
        if mix and not options.accept_license_mix:
            unknown = UNKNOWN in licenses.values()
            raise InputError(
                f"project.license = {ws.settings.project.license!r} may grant more than the images allow: "
                + "; ".join(mix)
                + '. Set project.license = "other" and state the terms, or export with --accept-license-mix'
                + ("; or name the license (`license:`) in the model card (README.md) of a model" if unknown else "")
            )
        attached = options.attach(ws, list(streamed.prints)) if options.attach else None
        for relative, data in (attached.files if attached else {}).items():
            (work / relative).parent.mkdir(parents=True, exist_ok=True)
            (work / relative).write_bytes(data)
        diff, entry = _draft_changelog(ws, parent, version, streamed.prints, options.notes)
        history = [(version, entry)] + [(r["version"], r["changelog"]) for r in reversed(releases(ws.store))]
        shards = streamed.shards
        summaries = [
            ConfigSummary(config, stats[config], sum(p.stat().st_size for p in shards[config]), len(shards[config]))
            for config in shards
            if stats[config].rows
        ]
        summaries += [
            ConfigSummary(
                name,
                ExportStats(rows=rows),
                sum(p.stat().st_size for p in paths),
                len(paths),
                DERIVED_FEATURES[name],
                DERIVED_DIRECTORIES[name],
            )
            for name, (paths, rows) in streamed.derived.items()
            if rows
        ]
        inputs = CardInputs(
            project=ws.settings.project.name,
            version=version,
            parent=parent,
            license=ws.settings.project.license,
            rows_mode=cfg.rows,
            export=cfg,
            configs=summaries,
            changelog=history,
            gallery=_write_gallery(ws, work, streamed.gallery_rows),
            excluded=dict(sorted(streamed.excluded.items())),
            plots=write_histograms(stats["default"], work),
            sections=[attached.card_section] if attached else [],
            license_mix=mix,
            generator_licenses=licenses,
            judge=judge_line(ws),
            rounds=round_agreement(ws.store.iter("verdict")),
        )
        build_card(inputs).save(work / "README.md")
        (work / "CITATION.cff").write_text(citation_cff(citation_of(inputs)), encoding="utf-8")
        (work / "croissant.json").write_text(croissant_json(inputs, utc_now()[:10]), encoding="utf-8")
        final = ws.exports_dir / folder_name(version)
        make_read_only(work)
        manifest = folder_manifest(work)
        record = release_record(
            version, parent, stats["default"].rows, streamed.content_hash, entry, final.name, manifest
        )
        hard = stats["hard_negatives"].rows if "hard_negatives" in stats else 0
        counts = {"rows": stats["default"].rows, "hard_negatives": hard, "shards": sum(map(len, shards.values()))}
        counts |= {"added": len(diff.added), "removed": len(diff.removed), "changed": len(diff.changed)}
        counts |= {"out_of_scope": sum(streamed.excluded.values())}
        return Output(
            records={"release": [record]},
            counts=Counter(counts),
            advance=1,
            moves=[(work, final)],
            details={"diff": diff},
        )

    @contextmanager
    def opened(self) -> Iterator[WriteVersion]:
        yield self


def generator_licenses(ws: Workspace, stats: Iterable[ExportStats]) -> dict[str, str]:
    """Each released generator's license: as its renders recorded it, else (renders made before licenses were
    recorded, or whose license was unknown then) from the model's identity now; `unknown` where nothing says."""
    found: dict[str, str] = {}
    for config in stats:
        for model, generator in config.generator_info.items():
            recorded = generator.get("license")
            if recorded and recorded != UNKNOWN:
                found[model] = recorded
                continue
            folder = ws.resolve_path(model)
            found[model] = model_license(
                model, folder=folder if folder.is_dir() else None, revision=generator.get("revision")
            )
    return found


def judge_line(ws: Workspace) -> str | None:
    """The configured judge and its standing against humans, for the card; None without a judge."""
    judge = configured_judge(ws)
    if judge is None:
        return None
    found = standing(ws.store, judge)
    kappa = "undefined" if found.quadratic_kappa is None else f"{found.quadratic_kappa:.3f}"
    return (
        f"`{judge.source}` (config `{judge.config}`); quadratic-weighted kappa against the latest human verdicts "
        f"{kappa} on {found.overlap} pairs both decided (an order-flipping judgment counts as a tie)"
    )


def check_judge_gate(ws: Workspace) -> None:
    """With `export.rows = "judged"`, refuse in one line unless the configured judge agrees with humans enough."""
    if ws.settings.export.rows != "judged":
        return
    judge = configured_judge(ws)
    if judge is None:
        raise InputError('export.rows = "judged" needs a judge: set [judge] model (and base_url) in widespec.toml')
    section = ws.settings.judge
    reason = gate(standing(ws.store, judge), min_kappa=section.min_kappa, min_overlap=section.min_overlap)
    if reason is not None:
        raise InputError(f'export.rows = "judged": {reason}')


class ExportStage(Stage):
    """A new immutable version folder (shards, plots, gallery, card) and its release record."""

    name = "export"
    needs = ("pair", "score", "decision", "verdict", "judgment")
    makes = ("release",)

    def pending(self, ws: Workspace) -> int:
        from exports.pending import pending_export

        return pending_export(ws)

    def plan(self, ws: Workspace, options: ExportOptions | None = None) -> Work | None:
        if options is None:
            raise InputError("export needs a version (widespec export --version X.Y.Z)")
        version = normalise_version(options.version)
        parent_record = check_new_version(ws.store, ws.exports_dir, version)
        check_judge_gate(ws)
        parent = parent_record["version"] if parent_record else None
        compute = WriteVersion(ws.root, parent, replace(options, version=version))
        return Work([version], compute.opened, label=f"export v{version}", unit="versions", total=0)

    def work_done(self, result: StageResult) -> int:
        return result.counts["rows"]

    def summary(self, result: StageResult) -> str:
        c = result.counts
        return f"{c['rows']} rows, {c['hard_negatives']} hard negatives, {c['shards']} shard(s)"


EXPORT = ExportStage()


def export_version(
    ws: Workspace,
    version: str,
    notes: str | None = None,
    scope: ReleaseScope | None = None,
    attach: Attach | None = None,
    *,
    accept_license_mix: bool = False,
) -> ExportResult:
    """Write exports/vX.Y.Z/ from the store: shards, plots, gallery and card (and what `attach` adds); refuses an
    existing version."""
    version = normalise_version(version)
    options = ExportOptions(version, notes, scope or ReleaseScope(), attach, accept_license_mix)
    result = execute(ws, EXPORT, options)
    final = ws.exports_dir / folder_name(version)
    record = ws.store.get("release", release_id(version))
    assert record is not None
    diff: Diff = result.details["diff"]
    c = result.counts
    info(
        f"exported v{version}: {c['rows']} rows, {c['hard_negatives']} hard negatives, {c['shards']} shard(s) → {final}"
    )
    return ExportResult(
        version, record["parent"], final, c["rows"], c["hard_negatives"], c["shards"], record["content_hash"], diff
    )
