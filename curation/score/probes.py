"""Probe texts per taxonomy dimension, from the taxonomy named by `[taxonomy] path`."""

from __future__ import annotations

from pathlib import Path

from curation.core.taxonomy import load_taxonomy


def probe_texts(setting: str, root: Path) -> dict[str, tuple[str, str]]:
    """Dimension id → (anti pole text, clean pole text)."""
    taxonomy = load_taxonomy(setting, root)
    return {d.id: (d.probe_anti, d.probe_clean) for d in taxonomy.dimensions.values()}
