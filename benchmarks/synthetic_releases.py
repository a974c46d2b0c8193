"""Synthetic workspaces of scored, filtered and judged pairs with real PNGs, written with the kernel's record
constructors as the stages write them: the export benchmark's input, and the export and publish tests'."""

from __future__ import annotations

import io
import random
import zlib
from dataclasses import dataclass
from typing import Any

from PIL import Image

from curation.core.ids import content_hash, stable_id
from curation.core.pairs import pair_id, put_renders
from curation.core.records import (
    LEXICON_REWRITER,
    base_prompt_id,
    base_prompt_record,
    decision_record,
    render_record,
    score_record,
    variant_record,
    verdict_record,
)
from curation.core.scorer import scorer_state
from curation.core.store import utc_now
from curation.core.workspace import Workspace

DIMENSIONS = ("clarity", "colour_aesthetic", "emotion", "lighting")
INTENSITIES = ("mild", "moderate", "extreme")
TAXONOMY = {"name": "widespec-core", "version": "1.0.0", "hash": content_hash("taxonomy-test")}
# A Hub-style id, so `generator.models = ["widespec-tests/tiny-sd"]` names it (see `configure_generator`).
GENERATOR = {"model": "widespec-tests/tiny-sd", "revision": "abc123", "preset": None, "license": "openrail++"}
SCORER = "local-dir:/models/tiny-clip"
THRESHOLDS = {"min_fidelity": 0.0, "min_content_kept": -1.0, "min_direction": 0.0, "review_margin": 0.01}


def png(index: int, side: str, size: int = 16) -> bytes:
    """A real PNG of seeded noise (so it barely compresses) that differs for every index and side."""
    pixels = random.Random(zlib.crc32(f"{side}-{index}".encode())).randbytes(size * size * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (size, size), pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class PairSpec:
    """How one planted pair is judged: CLIP outcome (and why), human verdict (round, label, votes) and scores."""

    clip: str | None = "accept"
    clip_reasons: tuple[str, ...] = ()  # the clip decision's reasons, as the filter writes them
    verdict: tuple[int, str, dict[str, int]] | None = None
    scored: bool = True
    flags: dict[str, int] | None = None  # the verdict's flag votes (unsafe, broken_image)


def _render(prompt_id: str, kind: str, seed: int, sha: str, generator: dict[str, Any]) -> dict[str, Any]:
    return render_record(
        prompt_id,
        kind,
        generator=generator,
        seed=seed,
        settings=(2, 3.5, 16, 16),
        image_sha256=sha,
        seconds=0.01,
    )


def add_pairs(
    ws: Workspace,
    specs: list[PairSpec],
    *,
    start: int = 0,
    generator: dict[str, Any] = GENERATOR,
    scorer: str = SCORER,
    image_size: int = 16,
) -> list[str]:
    """Store one complete pair per spec (prompts, renders, images, scores, decisions, verdicts); returns pair ids."""
    records: dict[str, list[dict[str, Any]]] = {k: [] for k in ("base_prompt", "variant", "render", "score")}
    records |= {"decision": [], "verdict": []}
    ids = []
    now = utc_now()
    for offset, spec in enumerate(specs):
        i = start + offset
        text = f"a grey cat number {i} on a windowsill"
        base_id = base_prompt_id(text)
        dims = [DIMENSIONS[i % len(DIMENSIONS)], DIMENSIONS[(i + 1) % len(DIMENSIONS)]]
        variant_id = stable_id("variant", base_id, 0)
        seed = 1000 + i
        records["base_prompt"].append(base_prompt_record(text, "prompts.txt", i + 1, created_at=now))
        records["variant"].append(
            variant_record(
                variant_id,
                base_id,
                0,
                dims,
                INTENSITIES[i % len(INTENSITIES)],
                f"{text}, blurry and badly lit, in clashing colours ({i})",
                rewriter={**LEXICON_REWRITER, "template_hash": content_hash("template")},
                taxonomy=TAXONOMY,
                created_at=now,
            )
        )
        base_sha = ws.images.put(png(i, "base", image_size))
        anti_sha = ws.images.put(png(i, "anti", image_size))
        anti_render = _render(variant_id, "variant", seed, anti_sha, generator)
        records["render"] += [_render(base_id, "base", seed, base_sha, generator), anti_render]
        pid = pair_id(variant_id, anti_render["pairing_key"])
        ids.append(pid)
        if spec.scored:
            metrics = {"fidelity": 0.2 + i * 0.001, "content_kept": 0.1, "direction": 0.05 - (i % 5) * 0.01}
            metrics |= {f"probe:{d}": 0.01 * (n + 1) for n, d in enumerate(dims)}
            records["score"] += [
                score_record(pid, metric, scorer, value, created_at=now) for metric, value in metrics.items()
            ]
        if spec.clip is not None:
            reasons = list(spec.clip_reasons)
            records["decision"].append(decision_record(pid, "clip", spec.clip, reasons, THRESHOLDS, created_at=now))
        if spec.verdict is not None:
            round_, label, votes = spec.verdict
            top = max(votes.values())
            resolved = {"label": label, "votes": votes, "agreement": top / sum(votes.values())}
            resolved["annotators"] = sum(votes.values())
            if spec.flags is not None:
                resolved["flags"] = spec.flags
            records["verdict"].append(verdict_record(pid, round_, resolved, created_at=now))
    with ws.store.transaction():
        for kind, items in records.items():
            if kind == "render":
                put_renders(ws.store, items)  # with the pairs they complete
            else:
                ws.store.put(kind, items)
        for key, value in scorer_state(ws.settings.scorer, scorer).items():
            ws.store.state_put(key, value)  # the configured scorer resolved to `scorer`, as `widespec score` records
    return ids
