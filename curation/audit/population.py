"""What an audit scores: the rows of a release (read from its parquet shards) or the workspace's current pairs.

A population is a list of `AuditUnit`s, each naming where its two images are (a PNG in the image store, or a
row of a shard) and carrying what the breakdowns need (generator, dimensions, intensity, who decided the pair).
Units are plain values: the compute can run in another process and read the images itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from curation.core.errors import InputError
from curation.core.ids import content_hash
from curation.core.judges import configured_judge
from curation.core.scorer import configured_scorer
from curation.core.workspace import Workspace
from curation.domain.evidence import pair_records
from curation.domain.fate import DECIDERS

WORKSPACE = "workspace"
META_COLUMNS = (
    "id",
    "base_prompt",
    "anti_prompt",
    "dimensions",
    "intensity",
    "generator",
    "clip_outcome",
    "verdict",
    "provenance",
)
HUMAN_LABELS = ("anti", "base", "tie")


@dataclass(frozen=True)
class ImageRef:
    """A PNG file (`row_group` < 0) or the image in `column` of one row of a parquet shard; `data` holds its
    bytes when the unit travels to a machine that cannot read `path`. `sha256` is what a workspace image's bytes
    must hash to (empty where nothing names it: a release's shard was checked against its manifest, an outside
    image has no stored hash)."""

    path: str
    row_group: int = -1
    row: int = -1
    column: str = ""
    data: bytes | None = field(default=None, repr=False)
    sha256: str = ""


@dataclass(frozen=True)
class AuditUnit:
    pair_id: str
    anti_prompt: str
    base_prompt: str
    anti_image: ImageRef
    base_image: ImageRef
    inputs: str
    generator: str
    dimensions: tuple[str, ...]
    intensity: str
    decided_by: str | None  # who placed the pair (the release's `decided_by`; the fate of a workspace pair)
    filter_scorers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReleaseRef:
    """A release to audit, as the app resolved it from the store (the audit reads only its folder)."""

    version: str
    content_hash: str
    folder: Path

    @property
    def population(self) -> str:
        return f"v{self.version}@{self.content_hash[:12]}"


def unit_inputs(anti_prompt: str, base_prompt: str, anti_image: str, base_image: str) -> str:
    """The digest of what a reward model reads of a pair: both prompts and both images."""
    return content_hash([anti_prompt, base_prompt, anti_image, base_image])[:16]


def row_decider(row: Mapping[str, Any]) -> str | None:
    """Who placed a release row: its `decided_by` column (releases before that column: a human where a round
    decided the row, else CLIP)."""
    if "decided_by" in row:
        return row["decided_by"]
    return "human" if row["verdict"] in HUMAN_LABELS else "clip"


def release_units(release: ReleaseRef) -> list[AuditUnit]:
    """Every row of the release's default config, in row order (images stay in the shards)."""
    shards = sorted((release.folder / "data").glob("train-*-of-*.parquet"))
    if not shards:
        raise InputError(f"release v{release.version}: {release.folder / 'data'} holds no parquet shards")
    units: list[AuditUnit] = []
    for shard in shards:
        parquet = pq.ParquetFile(shard)
        for group in range(parquet.num_row_groups):
            # Releases from before the judge have no decided_by column.
            columns = [*META_COLUMNS, *(["decided_by"] if "decided_by" in parquet.schema_arrow.names else [])]
            rows = parquet.read_row_group(group, columns=columns).to_pylist()
            for index, row in enumerate(rows):
                refs = [ImageRef(str(shard), group, index, column) for column in ("image_anti", "image_base")]
                units.append(
                    AuditUnit(
                        pair_id=row["id"],
                        anti_prompt=row["anti_prompt"],
                        base_prompt=row["base_prompt"],
                        anti_image=refs[0],
                        base_image=refs[1],
                        inputs=unit_inputs(row["anti_prompt"], row["base_prompt"], release.population, row["id"]),
                        generator=row["generator"],
                        dimensions=tuple(row["dimensions"]),
                        intensity=row["intensity"],
                        decided_by=row_decider(row),
                        filter_scorers=tuple(json.loads(row["provenance"]).get("scorer", ())),
                    )
                )
    return units


def workspace_units(ws: Workspace) -> list[AuditUnit]:
    """Every current pair of the workspace, variants of one base prompt next to each other (their base image
    is one image: batched together it is encoded once); who decided each is its fate under `export.rows`."""
    scorer = configured_scorer(ws.store, ws.settings.scorer)
    mode = ws.settings.export.rows
    units = []
    _, candidates = pair_records(ws.store, configured_judge(ws), scores=False)
    for records in candidates:
        pair = records.pair
        anti_sha, base_sha = pair.anti_render["image_sha256"], pair.base_render["image_sha256"]
        clip_decided = any(d["stage"] == "clip" for d in records.decisions)
        units.append(
            AuditUnit(
                pair_id=pair.id,
                anti_prompt=pair.variant["text"],
                base_prompt=pair.base["text"],
                anti_image=ImageRef(str(ws.images.path_for(anti_sha)), sha256=anti_sha),
                base_image=ImageRef(str(ws.images.path_for(base_sha)), sha256=base_sha),
                inputs=unit_inputs(pair.variant["text"], pair.base["text"], anti_sha, base_sha),
                generator=pair.generator,
                dimensions=tuple(pair.variant["dimensions"]),
                intensity=pair.variant["intensity"],
                decided_by=records.fate(mode).decided_by,
                filter_scorers=(scorer,) if scorer and clip_decided else (),
            )
        )
    return sorted(units, key=lambda u: (u.base_image.path, u.pair_id))


def placed_by(units: Iterable[AuditUnit], names: Iterable[str] | None) -> list[AuditUnit]:
    """The units some of `names` decided (all units when None)."""
    if names is None:
        return list(units)
    wanted = set(names)
    unknown = wanted - set(DECIDERS)
    if unknown:
        raise InputError(f"--decided-by: unknown {', '.join(sorted(unknown))} (known: {', '.join(DECIDERS)})")
    kept = [u for u in units if u.decided_by in wanted]
    if not kept:
        raise InputError(f"--decided-by {','.join(sorted(wanted))}: no pair of this population was decided by it")
    return kept


def facets(unit: AuditUnit, families: Mapping[str, str]) -> dict[str, Any]:
    """The groups a unit counts in for the breakdowns: generator, families, dimensions, intensity."""
    return {
        "generator": [unit.generator],
        "family": sorted({families.get(d, "(not in the taxonomy)") for d in unit.dimensions}),
        "dimension": list(unit.dimensions),
        "intensity": [unit.intensity],
    }
