"""Builds a small, consistent store (prompts, variants, renders with real PNGs, scores, decisions, verdicts)."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image

from curation.core.ids import content_hash, stable_id
from curation.core.pairs import pair_id, put_renders
from curation.core.records import (
    LEXICON_REWRITER,
    base_prompt_record,
    decision_record,
    render_record,
    score_record,
    variant_record,
    verdict_record,
)
from curation.core.scorer import scorer_state
from curation.core.workspace import Workspace
from tests.records import NOW

SCORER = "builtin:tiny-clip@000000000000"  # the id a resolved built-in scorer carries

DIMENSIONS = ["motion_blur", "clashing_colour", "decay", "dread", "awkward_framing"]
INTENSITIES = ["mild", "moderate", "extreme"]


def noise_png(seed: int, size: int = 32) -> bytes:
    """A small PNG of seeded noise (distinct per seed, never blank)."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def populate(
    ws: Workspace,
    n_pairs: int,
    *,
    model: str = "builtin:tiny-sd",
    seed: int = 0,
    license: str | None = None,
    image: Callable[[int, str], bytes] | None = None,
) -> list[str]:
    """Write n complete pairs with scores, CLIP decisions and (for every other pair) a round-1 verdict; `image(i,
    kind)` makes pair i's base or variant PNG (seeded noise by default)."""
    rng = random.Random(seed)
    pair_ids = []
    taxonomy = {"name": "widespec-core", "version": "1.0.0", "hash": content_hash("taxonomy")}
    for i in range(n_pairs):
        base_text = f"a quiet street scene number {i}"
        base = base_prompt_record(base_text, "test", i + 1, created_at=NOW)
        base_id = base["id"]
        variant_id = stable_id("variant", base_id, 0)
        dims = rng.sample(DIMENSIONS, 2)
        text = f"{base_text}, {dims[0]} and {dims[1]}"
        variant = variant_record(
            variant_id,
            base_id,
            0,
            dims,
            INTENSITIES[i % 3],
            text,
            rewriter=LEXICON_REWRITER,
            taxonomy=taxonomy,
            created_at=NOW,
        )
        ws.store.put("base_prompt", [base])
        ws.store.put("variant", [variant])
        for prompt_kind, prompt_id, image_seed in (("base", base_id, 2 * i), ("variant", variant_id, 2 * i + 1)):
            sha = ws.images.put(image(i, prompt_kind) if image else noise_png(image_seed))
            render = render_record(
                prompt_id,
                prompt_kind,
                generator={"model": model, "revision": None, "preset": None, "license": license},
                seed=7,
                settings=(2, 3.5, 32, 32),
                image_sha256=sha,
                seconds=0.01,
                created_at=NOW,
            )
            put_renders(ws.store, [render])
        pid = pair_id(variant_id, render["pairing_key"])  # both renders share it
        pair_ids.append(pid)
        fidelity = rng.uniform(0.1, 0.4)
        metrics = (("fidelity", fidelity), ("content_kept", rng.uniform(0, 0.3)), ("direction", rng.uniform(-0.1, 0.1)))
        ws.store.put("score", [score_record(pid, m, SCORER, v, created_at=NOW) for m, v in metrics])
        outcome = "accept" if fidelity > 0.2 else "reject"
        reasons = [] if outcome == "accept" else ["fidelity below min_fidelity"]
        decision = decision_record(pid, "clip", outcome, reasons, {"min_fidelity": 0.2}, created_at=NOW)
        ws.store.put("decision", [decision])
        if i % 2 == 0:
            resolved = {"label": "anti", "votes": {"anti": 2, "base": 1}, "agreement": 2 / 3, "annotators": 3}
            ws.store.put("verdict", [verdict_record(pid, 1, resolved, created_at=NOW)])
    for key, value in scorer_state(ws.settings.scorer, SCORER).items():
        ws.store.state_put(key, value)  # the configured scorer resolved to SCORER, as `widespec score` records
    return pair_ids
