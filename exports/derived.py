"""Training-ready configs built from each release row as it streams: `preference` and `sft`.

- `preference`: one row per decided pair under the anti-aesthetic prompt, in the layout preference trainers read
  (Pick-a-Pic, Diffusion-DPO): `prompt`, `chosen` and `rejected` images, `chosen_is_anti`, who decided (`human`
  where a round decided, else `clip`), votes and agreement. Ties are left out: a preference pair cannot express one.
- `sft`: `image` + `text`, the anti-aesthetic image and its prompt for the release's accepted rows, the columns
  diffusers' text-to-image (LoRA) training scripts read (`--image_column image --caption_column text`).

Images are the original PNG bytes, written again into each config's shards (parquet cannot share bytes between
files); the manifest covers them, the content hash covers the `default` and `hard_negatives` rows they come from.
"""

from __future__ import annotations

from typing import Any

from datasets import Features, Image, List, Value

DERIVED_DIRECTORIES = {"preference": "preference", "sft": "sft"}
VOTES = {"anti": Value("int32"), "base": Value("int32"), "tie": Value("int32")}
PREFERENCE_FEATURES = Features(
    {
        "id": Value("string"),
        "prompt": Value("string"),
        "chosen": Image(),
        "rejected": Image(),
        "chosen_is_anti": Value("bool"),
        "source": Value("string"),
        "votes": VOTES,
        "agreement": Value("float64"),
        "base_prompt": Value("string"),
        "dimensions": List(Value("string")),
        "intensity": Value("string"),
        "generator": Value("string"),
        "license": Value("string"),
    }
)
SFT_FEATURES = Features(
    {
        "id": Value("string"),
        "image": Image(),
        "text": Value("string"),
        "dimensions": List(Value("string")),
        "intensity": Value("string"),
        "generator": Value("string"),
        "license": Value("string"),
    }
)
DERIVED_FEATURES = {"preference": PREFERENCE_FEATURES, "sft": SFT_FEATURES}


def preference_row(row: dict[str, Any], source: str, chosen_is_anti: bool) -> dict[str, Any]:
    """A release row (images as sha256 references) as a preference pair under its anti-aesthetic prompt."""
    anti, base = row["image_anti"], row["image_base"]
    return {
        "id": row["id"],
        "prompt": row["anti_prompt"],
        "chosen": anti if chosen_is_anti else base,
        "rejected": base if chosen_is_anti else anti,
        "chosen_is_anti": chosen_is_anti,
        "source": source,
        "votes": row["votes"],
        "agreement": row["agreement"],
        "base_prompt": row["base_prompt"],
        "dimensions": row["dimensions"],
        "intensity": row["intensity"],
        "generator": row["generator"],
        "license": row["license"],
    }


def sft_row(row: dict[str, Any]) -> dict[str, Any]:
    """An accepted release row as an image-caption pair: the anti-aesthetic image and its prompt."""
    return {
        "id": row["id"],
        "image": row["image_anti"],
        "text": row["anti_prompt"],
        "dimensions": row["dimensions"],
        "intensity": row["intensity"],
        "generator": row["generator"],
        "license": row["license"],
    }
