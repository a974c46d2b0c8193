"""Probe texts per taxonomy dimension, read from the taxonomy named by `[taxonomy] path`.

Only the two probe poles are needed here, so this reads the JSON document directly; swap in the taxonomy loader
by changing `probe_texts` alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from curation.errors import InputError

BUILTIN_TAXONOMIES = {"widespec-core": Path(__file__).resolve().parent.parent / "data" / "taxonomy.json"}


def taxonomy_file(setting: str, root: Path) -> Path:
    """The taxonomy JSON file a `[taxonomy] path` value names (builtin:NAME or a path relative to the workspace)."""
    if setting.startswith("builtin:"):
        name = setting.removeprefix("builtin:")
        if name not in BUILTIN_TAXONOMIES:
            raise InputError(f"taxonomy.path = {setting}: unknown built-in taxonomy")
        return BUILTIN_TAXONOMIES[name]
    path = Path(setting).expanduser()
    return path if path.is_absolute() else root / path


def probe_texts(setting: str, root: Path) -> dict[str, tuple[str, str]]:
    """Dimension id → (anti pole text, clean pole text)."""
    path = taxonomy_file(setting, root)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return {
            dim["id"]: (dim["probe"]["anti"], dim["probe"]["clean"])
            for family in document["families"]
            for dim in family["dimensions"]
        }
    except FileNotFoundError:
        raise InputError(f"{path}: taxonomy file not found (taxonomy.path)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a taxonomy with probe texts: {exc!r}") from None
