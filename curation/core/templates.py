"""Instruction templates shipped with widespec (curation/data), each with the hash its records carry."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Template:
    text: str
    hash: str


@cache
def shipped_template(file: str) -> Template:
    """The template `file` of curation/data and the content hash recorded with everything made from it."""
    from curation.core.ids import content_hash

    text = (resources.files("curation") / "data" / file).read_text(encoding="utf-8")
    return Template(text=text, hash=content_hash(text))
