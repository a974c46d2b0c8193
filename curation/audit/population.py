"""What an audit scores: the rows of a release (read from its parquet shards) or the workspace's current pairs.

A population is a list of `PairUnit`s, each naming where its two images are (a PNG in the image store, or a
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
from curation.core.judges import configured_judge, current_judgments
from curation.core.pairs import iter_pairs
from curation.core.scorer import configured_scorer
from curation.core.workspace import Workspace

WORKSPACE = "workspace"
DECIDERS = ("clip", "human", "judge")
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


@dataclass(frozen=True)
class ImageRef:
    """A PNG file (`row_group` < 0) or the image in `column` of one row of a parquet shard; `data` holds its
    bytes when the unit travels to a machine that cannot read `path`."""

    path: str
    row_group: int = -1
    row: int = -1
    column: str = ""
    data: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PairUnit:
    pair_id: str
    anti_prompt: str
    base_prompt: str
    anti_image: ImageRef
    base_image: ImageRef
    inputs: str
    generator: str
    dimensions: tuple[str, ...]
    intensity: str
    decided_by: tuple[str, ...]
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


def deciders(clip_outcome: str | None, verdict: str | None, judge_verdict: str | None = None) -> tuple[str, ...]:
    found = (("clip", clip_outcome), ("human", verdict), ("judge", judge_verdict))
    return tuple(name for name, present in found if present)


def release_units(release: ReleaseRef) -> list[PairUnit]:
    """Every row of the release's default config, in row order (images stay in the shards)."""
    shards = sorted((release.folder / "data").glob("train-*-of-*.parquet"))
    if not shards:
        raise InputError(f"release v{release.version}: {release.folder / 'data'} holds no parquet shards")
    units: list[PairUnit] = []
    for shard in shards:
        parquet = pq.ParquetFile(shard)
        for group in range(parquet.num_row_groups):
            # Releases from before the judge have no judge_verdict column.
            columns = [*META_COLUMNS, *(["judge_verdict"] if "judge_verdict" in parquet.schema_arrow.names else [])]
            rows = parquet.read_row_group(group, columns=columns).to_pylist()
            for index, row in enumerate(rows):
                refs = [ImageRef(str(shard), group, index, column) for column in ("image_anti", "image_base")]
                units.append(
                    PairUnit(
                        pair_id=row["id"],
                        anti_prompt=row["anti_prompt"],
                        base_prompt=row["base_prompt"],
                        anti_image=refs[0],
                        base_image=refs[1],
                        inputs=unit_inputs(row["anti_prompt"], row["base_prompt"], release.population, row["id"]),
                        generator=row["generator"],
                        dimensions=tuple(row["dimensions"]),
                        intensity=row["intensity"],
                        decided_by=deciders(row["clip_outcome"], row["verdict"], row.get("judge_verdict")),
                        filter_scorers=tuple(json.loads(row["provenance"]).get("scorer", ())),
                    )
                )
    return units


def workspace_units(ws: Workspace) -> list[PairUnit]:
    """Every complete pair of the workspace, variants of one base prompt next to each other (their base image
    is one image: batched together it is encoded once)."""
    scorer = configured_scorer(ws.store, ws.settings.scorer)
    clip_decided = {d["subject_id"] for d in ws.store.iter("decision", stage="clip")}
    human_decided = {v["subject_id"] for v in ws.store.iter("verdict")}
    judge = configured_judge(ws)
    judge_decided = (
        {p for p, j in current_judgments(ws.store, judge).items() if j["status"] == "ok"} if judge else set()
    )
    units = []
    for pair in iter_pairs(ws.store):
        anti_sha, base_sha = pair.anti_render["image_sha256"], pair.base_render["image_sha256"]
        units.append(
            PairUnit(
                pair_id=pair.id,
                anti_prompt=pair.variant["text"],
                base_prompt=pair.base["text"],
                anti_image=ImageRef(str(ws.images.path_for(anti_sha))),
                base_image=ImageRef(str(ws.images.path_for(base_sha))),
                inputs=unit_inputs(pair.variant["text"], pair.base["text"], anti_sha, base_sha),
                generator=pair.generator,
                dimensions=tuple(pair.variant["dimensions"]),
                intensity=pair.variant["intensity"],
                decided_by=deciders(
                    "clip" if pair.id in clip_decided else None,
                    "human" if pair.id in human_decided else None,
                    "judge" if pair.id in judge_decided else None,
                ),
                filter_scorers=(scorer,) if scorer and pair.id in clip_decided else (),
            )
        )
    return sorted(units, key=lambda u: (u.base_image.path, u.pair_id))


def decided_by(units: Iterable[PairUnit], names: Iterable[str] | None) -> list[PairUnit]:
    """The units some of `names` decided (all units when None)."""
    if names is None:
        return list(units)
    wanted = set(names)
    unknown = wanted - set(DECIDERS)
    if unknown:
        raise InputError(f"--decided-by: unknown {', '.join(sorted(unknown))} (known: {', '.join(DECIDERS)})")
    kept = [u for u in units if wanted & set(u.decided_by)]
    if not kept:
        raise InputError(f"--decided-by {','.join(sorted(wanted))}: no pair of this population was decided by it")
    return kept


def facets(unit: PairUnit, families: Mapping[str, str]) -> dict[str, Any]:
    """The groups a unit counts in for the breakdowns: generator, families, dimensions, intensity."""
    return {
        "generator": [unit.generator],
        "family": sorted({families.get(d, "(not in the taxonomy)") for d in unit.dimensions}),
        "dimension": list(unit.dimensions),
        "intensity": [unit.intensity],
    }
