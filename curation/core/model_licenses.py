"""A generator model's license, from the model's identity, whatever name `generator.models` gave it.

Known Hub ids (the models widespec has presets for, and its built-in test models) map to their Hugging Face
license id. Any other model's license is read from its model card's YAML front matter (README.md: `license:`,
or `license_name:` where `license: other`), beside its weights or in its Hugging Face cache snapshot. Nothing is
downloaded. A model none of these names a license for has license `unknown`, recorded and shown as such.
"""

from __future__ import annotations

import re
from pathlib import Path

from curation.core import hub

UNKNOWN = "unknown"
OTHER = "other"  # the Hub's license id for terms a card names in `license_name`
CARD = "README.md"
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")

# Hub id (lower case; the Hub resolves ids case-insensitively) -> its license id on the Hub.
KNOWN_LICENSES = {
    "black-forest-labs/flux.1-dev": "flux-1-dev-non-commercial-license",
    "black-forest-labs/flux.1-krea-dev": "flux-1-dev-non-commercial-license",
    "black-forest-labs/flux.1-schnell": "apache-2.0",
    "stabilityai/stable-diffusion-xl-base-1.0": "openrail++",
    "stabilityai/stable-diffusion-3.5-medium": "stabilityai-ai-community",
    "playgroundai/playground-v2.5-1024px-aesthetic": "playground-v2dot5-community",
    "builtin:tiny-sd": "apache-2.0",
    "builtin:tiny-flux": "apache-2.0",
}


def known_license(model: str) -> str | None:
    """The license of a model known by its Hub id (or built-in name), else None."""
    return KNOWN_LICENSES.get(model.strip().lower())


def card_license(card: Path) -> str | None:
    """The license a model card's YAML front matter declares (`license_name` where `license: other`), else None
    (no card, no front matter, no license in it, or front matter that does not parse)."""
    import yaml
    from huggingface_hub import metadata_load

    try:
        metadata = metadata_load(card) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return None
    declared = metadata.get("license")
    if isinstance(declared, list) and len(declared) == 1:
        declared = declared[0]
    if not isinstance(declared, str) or not declared.strip():
        return None
    name = metadata.get("license_name")
    if declared.strip().lower() == OTHER and isinstance(name, str) and name.strip():
        return name.strip().lower()
    return declared.strip().lower()


def model_license(model: str, *, folder: Path | None = None, revision: str | None = None) -> str:
    """The license of `model` (a Hub id, builtin:NAME or a folder's recorded name): known by its Hub id, else
    from the model card in `folder` or in the Hub cache (at `revision`, then at main), else `unknown`."""
    if (known := known_license(model)) is not None:
        return known
    cards = [folder / CARD] if folder is not None else []
    if HUB_ID.fullmatch(model):
        for at in dict.fromkeys((revision, None)):
            try:
                cached = hub.cached_file(model, [CARD], revision=at)
            except ValueError:  # not a valid Hub id or revision after all
                cached = None
            cards += [cached] if cached is not None else []
    return next((found for card in cards if card.is_file() and (found := card_license(card))), UNKNOWN)
