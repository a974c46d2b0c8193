"""Valid example records of every kind, for contract tests and for building test stores."""

from __future__ import annotations

from typing import Any

from curation.core import records
from curation.core.ids import content_hash, stable_id

NOW = "2026-11-27T12:00:00+00:00"
BASE_ID = records.base_prompt_id("a grey cat on a windowsill")
VARIANT_ID = stable_id("variant", BASE_ID, 0)
PAIR_ID = stable_id("pair", VARIANT_ID, "tiny", 1)


def _render(prompt_id: str, kind: str, image: bytes) -> dict[str, Any]:
    return records.render_record(
        prompt_id,
        kind,
        generator={"model": "tiny", "revision": None, "preset": None, "license": None},
        seed=1,
        settings=(2, 3.5, 64, 64),
        image_sha256=content_hash(image),
        seconds=0.1,
        created_at=NOW,
    )


def example(kind: str) -> dict[str, Any]:
    """A fresh, valid record of `kind` (callers may mutate it), built by the kernel's record constructors."""
    base = records.base_prompt_record(
        "a grey cat on a windowsill", "prompts.txt", 1, category="animals", created_at=NOW
    )
    examples: dict[str, dict[str, Any]] = {
        "base_prompt": base,
        "variant": records.variant_record(
            VARIANT_ID,
            BASE_ID,
            0,
            ["motion_blur", "clashing_colour"],
            "moderate",
            "a grey cat on a windowsill, smeared by motion blur, in clashing colours",
            rewriter=records.LEXICON_REWRITER,
            taxonomy={"name": "widespec-core", "version": "1.0.0", "hash": content_hash("taxonomy")},
            created_at=NOW,
        ),
        "render": _render(VARIANT_ID, "variant", b"png"),
        "pair": records.pair_record(
            _render(BASE_ID, "base", b"base png"), _render(VARIANT_ID, "variant", b"png"), BASE_ID, created_at=NOW
        ),
        "score": records.score_record(PAIR_ID, "fidelity", "tiny-clip", 0.31, created_at=NOW),
        "decision": records.decision_record(PAIR_ID, "clip", "accept", [], {"min_fidelity": 0.2}, created_at=NOW),
        "annotation": records.annotation_record(
            PAIR_ID,
            1,
            "ann1",
            {"choice": "anti", "qualities": ["motion_blur"], "subject_kept": True, "flags": [], "comment": None},
            task_id=7,
            gold=False,
            ab_order="anti_first",
            created_at=NOW,
        ),
        "verdict": records.verdict_record(
            PAIR_ID,
            1,
            {"label": "anti", "votes": {"anti": 2, "base": 1}, "agreement": 2 / 3, "annotators": 3},
            created_at=NOW,
        ),
        "release": {
            "id": stable_id("release", "1.0.0"),
            "version": "1.0.0",
            "parent": None,
            "row_count": 1,
            "content_hash": content_hash("rows"),
            "changelog": "First release.",
            "created_at": NOW,
        },
        "audit": records.audit_record(
            "v1.0.0@" + content_hash("rows")[:12],
            "builtin:tiny-clip@0123456789ab",
            PAIR_ID,
            [0.31, 0.28, 0.22, 0.3],
            inputs=content_hash("inputs")[:16],
            prompt_tokens=(19, 9),
            context=77,
            created_at=NOW,
        ),
        "judgment": records.judgment_record(
            PAIR_ID,
            "judge:Qwen/Qwen2.5-VL-7B-Instruct@cc594898137f460bfe9f0759e9844b3ce807cfb5",
            stable_id("judge", "config"),
            [
                {
                    "order": order,
                    "status": "ok",
                    "choice": choice,
                    "label": "anti",
                    "qualities": ["motion_blur"],
                    "subject_recognisable": True,
                    "reason": "The anti-aesthetic image is blurred as asked.",
                    "error": None,
                }
                for order, choice in (("anti_first", "A"), ("base_first", "B"))
            ],
            {"prompt_tokens": 1700, "completion_tokens": 60},
            created_at=NOW,
        ),
    }
    return examples[kind]
