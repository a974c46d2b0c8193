"""The judge's messages and answer checks (pure): instructions, the pair as data plus two images, the answer.

The user message is a JSON object (the anti-aesthetic prompt and the requested qualities, quoted as data), then
image A and image B as data URLs. The answer is a JSON object: the choice (A, B or tie), which requested qualities
the chosen image shows, whether the base subject is recognisable, and a short reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator

from curation.core.answers import json_value, looks_like_refusal
from curation.core.llm import Interpreted
from curation.core.templates import Template

CHOICES = ("A", "B", "tie")
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "choice": {"enum": list(CHOICES)},
        "qualities": {"type": "array", "items": {"type": "string"}},
        "subject_recognisable": {"type": "boolean"},
        "reason": {"type": "string"},
    },
    "required": ["choice", "qualities", "subject_recognisable", "reason"],
    "additionalProperties": False,
}
_VALIDATOR = Draft202012Validator(ANSWER_SCHEMA)
Order = Literal["anti_first", "base_first"]


@dataclass(frozen=True)
class Quality:
    id: str
    name: str


def build_messages(
    template: Template, prompt: str, qualities: Sequence[Quality], image_a: str, image_b: str
) -> list[dict[str, Any]]:
    """Instructions, then the prompt and qualities as one JSON object, then image A and image B (data URLs)."""
    data = {"prompt": prompt, "qualities": [{"id": q.id, "name": q.name} for q in qualities]}
    return [
        {"role": "system", "content": template.text},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": json.dumps(data, ensure_ascii=False)},
                {"type": "text", "text": "Image A:"},
                {"type": "image_url", "image_url": {"url": image_a}},
                {"type": "text", "text": "Image B:"},
                {"type": "image_url", "image_url": {"url": image_b}},
            ],
        },
    ]


def response_format(mode: str) -> dict[str, Any]:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "pair_judgment", "schema": ANSWER_SCHEMA, "strict": True},
        }
    return {"type": "json_object"}


def label_of(choice: str, order: Order) -> str:
    """The choice with the A/B order undone: which image of the pair (anti or base) won, or tie."""
    if choice == "tie":
        return "tie"
    anti_is_a = order == "anti_first"
    return "anti" if (choice == "A") == anti_is_a else "base"


def interpret(answer: Mapping[str, Any], qualities: Sequence[Quality]) -> Interpreted:
    """What one completion means: a usable answer (its fields, qualities mapped to the requested ids), a refusal,
    or an invalid answer (retried)."""
    content, refusal = answer.get("content"), answer.get("refusal")
    if refusal:
        return Interpreted("refused", None, f"model refused: {str(refusal).strip()[:200]}")
    if answer.get("finish_reason") == "content_filter":
        return Interpreted("refused", None, "model refused: the endpoint's content filter stopped the answer")
    if not content or not str(content).strip():
        return Interpreted("invalid", None, "empty answer")
    try:
        value = json_value(str(content))
    except ValueError as exc:
        if looks_like_refusal(str(content)):
            return Interpreted("refused", None, f"model refused: {str(content).strip()[:200]}")
        return Interpreted("invalid", None, str(exc))
    errors = sorted(_VALIDATOR.iter_errors(value), key=lambda e: e.json_path)
    if errors:
        return Interpreted(
            "invalid", None, f"answer does not match the schema: {errors[0].json_path}: {errors[0].message}"
        )
    by_name = {q.name.lower(): q.id for q in qualities} | {q.id.lower(): q.id for q in qualities}
    named = [by_name[n.strip().lower()] for n in value["qualities"] if n.strip().lower() in by_name]
    return Interpreted(
        "ok",
        {
            "choice": value["choice"],
            "qualities": list(dict.fromkeys(named)) if value["choice"] != "tie" else [],
            "subject_recognisable": bool(value["subject_recognisable"]),
            "reason": value["reason"].strip()[:500] or None,
        },
    )
