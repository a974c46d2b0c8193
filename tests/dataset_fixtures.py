"""Builds a small, consistent store (prompts, variants, renders with real PNGs, scores, decisions, verdicts)."""

from __future__ import annotations

import io
import random

from PIL import Image

from curation.core.ids import content_hash, stable_id
from curation.core.pairs import pair_id
from curation.core.workspace import Workspace
from tests.records import NOW

DIMENSIONS = ["motion_blur", "clashing_colour", "decay", "dread", "awkward_framing"]
INTENSITIES = ["mild", "moderate", "extreme"]


def noise_png(seed: int, size: int = 32) -> bytes:
    """A small PNG of seeded noise (distinct per seed, never blank)."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def populate(ws: Workspace, n_pairs: int, *, model: str = "builtin:tiny-sd", seed: int = 0) -> list[str]:
    """Write n complete pairs with scores, CLIP decisions and (for every other pair) a round-1 verdict."""
    rng = random.Random(seed)
    pair_ids = []
    taxonomy = {"name": "widespec-core", "version": "1.0.0", "hash": content_hash("taxonomy")}
    for i in range(n_pairs):
        base_text = f"a quiet street scene number {i}"
        base_id = stable_id("base_prompt", base_text)
        variant_id = stable_id("variant", base_id, 0)
        dims = rng.sample(DIMENSIONS, 2)
        records = {
            "base_prompt": {
                "id": base_id,
                "text": base_text,
                "source": "test",
                "source_row": i + 1,
                "category": None,
                "status": "ok",
                "block_rule": None,
                "created_at": NOW,
            },
            "variant": {
                "id": variant_id,
                "base_id": base_id,
                "index": 0,
                "dimensions": dims,
                "intensity": INTENSITIES[i % 3],
                "text": f"{base_text}, {dims[0]} and {dims[1]}",
                "status": "ok",
                "error": None,
                "rewriter": {"kind": "lexicon", "model": None, "template_hash": None, "params": {}},
                "taxonomy": taxonomy,
                "usage": None,
                "created_at": NOW,
            },
        }
        for kind, record in records.items():
            ws.store.put(kind, [record])
        for prompt_kind, prompt_id, image_seed in (("base", base_id, 2 * i), ("variant", variant_id, 2 * i + 1)):
            sha = ws.images.put(noise_png(image_seed))
            ws.store.put(
                "render",
                [
                    {
                        "id": stable_id("render", prompt_id, model, 7),
                        "prompt_id": prompt_id,
                        "prompt_kind": prompt_kind,
                        "generator": {"model": model, "revision": None, "preset": None, "license": None},
                        "seed": 7,
                        "steps": 2,
                        "guidance": 3.5,
                        "width": 32,
                        "height": 32,
                        "image_sha256": sha,
                        "seconds": 0.01,
                        "status": "ok",
                        "error": None,
                        "created_at": NOW,
                    }
                ],
            )
        pid = pair_id(variant_id, model, 7)
        pair_ids.append(pid)
        fidelity = rng.uniform(0.1, 0.4)
        ws.store.put(
            "score",
            [
                {
                    "id": stable_id("score", pid, metric),
                    "subject_id": pid,
                    "metric": metric,
                    "value": value,
                    "scorer": "builtin:tiny-clip",
                    "status": "ok",
                    "error": None,
                    "created_at": NOW,
                }
                for metric, value in (
                    ("fidelity", fidelity),
                    ("content_kept", rng.uniform(0, 0.3)),
                    ("direction", rng.uniform(-0.1, 0.1)),
                )
            ],
        )
        outcome = "accept" if fidelity > 0.2 else "reject"
        ws.store.put(
            "decision",
            [
                {
                    "id": stable_id("decision", pid, "clip"),
                    "subject_id": pid,
                    "stage": "clip",
                    "outcome": outcome,
                    "reasons": [] if outcome == "accept" else ["fidelity below min_fidelity"],
                    "thresholds": {"min_fidelity": 0.2},
                    "created_at": NOW,
                }
            ],
        )
        if i % 2 == 0:
            ws.store.put(
                "verdict",
                [
                    {
                        "id": stable_id("verdict", pid, 1),
                        "round": 1,
                        "subject_id": pid,
                        "label": "anti",
                        "votes": {"anti": 2, "base": 1},
                        "agreement": 2 / 3,
                        "annotators": 3,
                        "created_at": NOW,
                    }
                ],
            )
    return pair_ids
