"""Reading a model's answer (pure): the JSON object inside it, and whether it is an apology instead."""

from __future__ import annotations

import json
import re
from typing import Any

_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry,? (?:but )?i|i apologi[sz]e|unfortunately,? i"
    r"|i (?:can ?not|can'?t|won'?t|will not|am unable to|'m unable to|am not able to)"
    r" (?:help|assist|comply|create|write|generate|produce|provide|fulfil+|do that|rewrite|judge|evaluate|compare))",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def looks_like_refusal(text: str) -> bool:
    """Whether `text` opens like an apology or a refusal rather than an answer."""
    return _REFUSAL.search(text.strip()) is not None


def json_value(content: str) -> Any:
    """The JSON value of an answer, also inside a ```json fence or surrounded by prose; ValueError says why
    there is none."""
    stripped = content.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    if not stripped.startswith("{"):
        start, end = stripped.find("{"), stripped.rfind("}")
        if start == -1 or end <= start:
            raise ValueError("answer is not JSON")
        stripped = stripped[start : end + 1]
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(f"answer is not valid JSON ({exc.msg} at character {exc.pos})") from None
