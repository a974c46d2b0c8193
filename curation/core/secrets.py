"""Secret values out of stored text: the configured tokens' values and key-shaped strings become `***`.

Keys live only in environment variables that the config names; whatever a provider or server echoes back in an
error (a key in a URL, a header, a message) is redacted before it reaches the run ledger or a log.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from curation.core.settings import Settings

_SECRET_SHAPES = re.compile(r"\b(?:sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,})")
ALWAYS = ("HF_TOKEN",)  # read by huggingface_hub whatever the config says


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with the given secret values and `sk-…` / `hf_…`-shaped keys replaced by `***`."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return _SECRET_SHAPES.sub("***", text)


def configured_secrets(settings: Settings) -> list[str]:
    """The values of every token variable the config names (annotation, rewriter, judge) and HF_TOKEN."""
    names = {settings.annotation.token_env, settings.rewriter.api_key_env, settings.judge.api_key_env, *ALWAYS}
    return [value for name in sorted(names) if (value := os.environ.get(name, ""))]


def stored_secrets(credentials: Path) -> list[str]:
    """The passwords and tokens of a credentials file (`{login: {"password": …, "token": …}}`); none if absent."""
    try:
        logins = json.loads(credentials.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(value) for login in logins.values() if isinstance(login, dict) for value in login.values() if value]
