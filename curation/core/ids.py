"""Text normalisation and deterministic ids (hashes of normalised inputs)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

_WHITESPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """NFC-normalise and collapse every run of whitespace to one space, trimming the ends."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: Any) -> str:
    """Full sha256 hex digest of a value's canonical JSON (strings and bytes are hashed as they are)."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode()
    else:
        data = canonical_json(value).encode()
    return hashlib.sha256(data).hexdigest()


def stable_id(kind: str, *parts: Any) -> str:
    """A 16-hex-digit id for a record of `kind`, derived only from its identifying parts."""
    return content_hash([kind, *parts])[:16]
