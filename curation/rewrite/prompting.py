"""The LLM rewriter's messages and answer checks (pure): template, quoted data, parsing, output checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema_rs
from jsonschema import Draft202012Validator

from curation.core.answers import json_value, looks_like_refusal
from curation.core.ids import normalise_text
from curation.core.templates import Template, shipped_template
from curation.rewrite import RewriteRequest
from curation.rewrite.words import content_of, tokens

TEMPLATE_FILE = "rewrite_template.txt"
MIN_WORDS = 3
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "minLength": 1, "pattern": r"\S"}},
    "required": ["prompt"],
    "additionalProperties": False,
}
# What the endpoint is asked for: only keywords every structured-output implementation accepts.
REQUESTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"prompt": {"type": "string"}},
    "required": ["prompt"],
    "additionalProperties": False,
}
_ANSWER_VALIDATOR = Draft202012Validator(ANSWER_SCHEMA)
_FAST_ANSWER_VALIDATOR = jsonschema_rs.validator_for(ANSWER_SCHEMA)


def load_template() -> Template:
    """The instruction template shipped with widespec, and the hash recorded with what it makes."""
    return shipped_template(TEMPLATE_FILE)


_USER_JSON = json.JSONEncoder(ensure_ascii=False)  # what json.dumps(data, ensure_ascii=False) uses, built once


def build_messages(template: Template, request: RewriteRequest, max_words: int) -> list[dict[str, str]]:
    """System instructions plus the request as one JSON object: the base prompt only ever appears quoted."""
    data = {
        "base_prompt": request.base_text,
        "intensity": request.intensity,
        "dimensions": [
            {"name": d.name, "instruction": d.description, "wording": d.intensities[request.intensity]}
            for d in request.dimensions
        ],
    }
    return [
        {"role": "system", "content": template.text.replace("{max_words}", str(max_words))},
        {"role": "user", "content": _USER_JSON.encode(data)},
    ]


def response_format(mode: str) -> dict[str, Any]:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "anti_aesthetic_prompt", "schema": REQUESTED_SCHEMA, "strict": True},
        }
    return {"type": "json_object"}


def parse_answer(content: str) -> dict[str, Any]:
    """The answer object from a completion's content; ValueError says why it is unusable."""
    value = json_value(content)
    if _FAST_ANSWER_VALIDATOR.is_valid(value):
        assert isinstance(value, dict)
        return value
    errors = sorted(_ANSWER_VALIDATOR.iter_errors(value), key=lambda e: e.json_path)
    if errors:
        raise ValueError(f"answer does not match the schema: {errors[0].json_path}: {errors[0].message}")
    assert isinstance(value, dict)
    return value


def _normalised(text: str) -> str:
    """`normalise_text`, with a shortcut for what most texts are: ASCII (so NFC already) whose only whitespace is
    single spaces (printable ASCII has no other whitespace), for which only trimming the ends changes anything."""
    if text.isascii() and text.isprintable() and "  " not in text:
        return text.strip()
    return normalise_text(text)


def check_output(text: str, base_text: str, max_words: int) -> str | None:
    """Why a rewrite is unusable (length, a copy of the base, subject lost), or None when it passes."""
    new_tokens, base_tokens = tokens(text), tokens(base_text)
    words = len(new_tokens)
    if words < MIN_WORDS:
        return f"rewrite too short ({words} words, minimum {MIN_WORDS})"
    if words > max_words:
        return f"rewrite too long ({words} words, maximum {max_words})"
    base_words, new_words = content_of(base_tokens), content_of(new_tokens)
    if new_tokens == base_tokens or new_words <= base_words:
        return "rewrite is a copy of the base prompt"
    if base_words and not base_words & new_words:
        return "rewrite lost the base prompt's subject (no key word of the base prompt kept)"
    return None


@dataclass(frozen=True)
class Verdict:
    status: Literal["ok", "refused", "invalid"]
    text: str | None
    reason: str | None


def judge(
    content: str | None, refusal: str | None, finish_reason: str | None, base_text: str, max_words: int
) -> Verdict:
    """Decide what one completion means for the variant: a usable rewrite, a refusal, or an invalid answer."""
    if refusal:
        return Verdict("refused", None, f"model refused: {refusal.strip()[:200]}")
    if finish_reason == "content_filter":
        return Verdict("refused", None, "model refused: the endpoint's content filter stopped the answer")
    if not content or not content.strip():
        return Verdict("invalid", None, "empty answer")
    try:
        prompt = parse_answer(content)["prompt"].strip()
    except ValueError as exc:
        if looks_like_refusal(content):
            return Verdict("refused", None, f"model refused: {content.strip()[:200]}")
        return Verdict("invalid", None, str(exc))
    if looks_like_refusal(prompt):
        return Verdict("refused", None, f"model refused: {prompt[:200]}")
    problem = check_output(prompt, base_text, max_words)
    if problem:
        return Verdict("invalid", None, problem)
    return Verdict("ok", _normalised(prompt), None)
