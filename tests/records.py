"""Valid example records of every kind, for contract tests and for building test stores."""

from __future__ import annotations

from typing import Any

from curation.core.ids import content_hash, stable_id

NOW = "2026-11-27T12:00:00+00:00"
BASE_ID = stable_id("base_prompt", "a grey cat on a windowsill")
VARIANT_ID = stable_id("variant", BASE_ID, 0)
PAIR_ID = stable_id("pair", VARIANT_ID, "tiny", 1)


def example(kind: str) -> dict[str, Any]:
    """A fresh, valid record of `kind` (callers may mutate it)."""
    examples: dict[str, dict[str, Any]] = {
        "base_prompt": {
            "id": BASE_ID,
            "text": "a grey cat on a windowsill",
            "source": "prompts.txt",
            "source_row": 1,
            "category": "animals",
            "status": "ok",
            "block_rule": None,
            "created_at": NOW,
        },
        "variant": {
            "id": VARIANT_ID,
            "base_id": BASE_ID,
            "index": 0,
            "dimensions": ["motion_blur", "clashing_colour"],
            "intensity": "moderate",
            "text": "a grey cat on a windowsill, smeared by motion blur, in clashing colours",
            "status": "ok",
            "error": None,
            "rewriter": {"kind": "lexicon", "model": None, "template_hash": None, "params": {}},
            "taxonomy": {"name": "widespec-core", "version": "1.0.0", "hash": content_hash("taxonomy")},
            "usage": None,
            "created_at": NOW,
        },
        "render": {
            "id": stable_id("render", VARIANT_ID),
            "prompt_id": VARIANT_ID,
            "prompt_kind": "variant",
            "generator": {"model": "tiny", "revision": None, "preset": None, "license": None},
            "seed": 1,
            "steps": 2,
            "guidance": 3.5,
            "width": 64,
            "height": 64,
            "image_sha256": content_hash(b"png"),
            "seconds": 0.1,
            "status": "ok",
            "error": None,
            "created_at": NOW,
        },
        "score": {
            "id": stable_id("score", PAIR_ID, "fidelity"),
            "subject_id": PAIR_ID,
            "metric": "fidelity",
            "value": 0.31,
            "scorer": "tiny-clip",
            "status": "ok",
            "error": None,
            "created_at": NOW,
        },
        "decision": {
            "id": stable_id("decision", PAIR_ID, "clip"),
            "subject_id": PAIR_ID,
            "stage": "clip",
            "outcome": "accept",
            "reasons": [],
            "thresholds": {"min_fidelity": 0.2},
            "created_at": NOW,
        },
        "annotation": {
            "id": stable_id("annotation", PAIR_ID, 1, "ann1"),
            "round": 1,
            "subject_id": PAIR_ID,
            "annotator": "ann1",
            "task_id": 7,
            "gold": False,
            "ab_order": "anti_first",
            "choice": "anti",
            "qualities": ["motion_blur"],
            "subject_kept": True,
            "flags": [],
            "comment": None,
            "created_at": NOW,
        },
        "verdict": {
            "id": stable_id("verdict", PAIR_ID, 1),
            "round": 1,
            "subject_id": PAIR_ID,
            "label": "anti",
            "votes": {"anti": 2, "base": 1},
            "agreement": 2 / 3,
            "annotators": 3,
            "created_at": NOW,
        },
        "release": {
            "id": stable_id("release", "1.0.0"),
            "version": "1.0.0",
            "parent": None,
            "row_count": 1,
            "content_hash": content_hash("rows"),
            "changelog": "First release.",
            "created_at": NOW,
        },
    }
    return examples[kind]
