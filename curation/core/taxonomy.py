"""The anti-aesthetic taxonomy: loading (built-in or a user file), validation and its provenance hash."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from curation.core.contracts import describe, first_error
from curation.core.errors import InputError
from curation.core.ids import content_hash

BUILTIN_TAXONOMIES = {"widespec-core": "taxonomy.json"}
INTENSITIES = ("mild", "moderate", "extreme")


@dataclass(frozen=True)
class Dimension:
    """One anti-aesthetic quality with the wording rewriters and probes use."""

    id: str
    family: str
    name: str
    description: str
    intensities: dict[str, str]
    probe_anti: str
    probe_clean: str
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    paper_dimension: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    """A validated taxonomy: dimensions in document order, incompatible pairs, and provenance."""

    name: str
    version: str
    hash: str
    families: tuple[tuple[str, str], ...]
    dimensions: dict[str, Dimension]
    incompatible: frozenset[frozenset[str]]

    def provenance(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "hash": self.hash}

    def compatible(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.incompatible


def check_document(document: Any, source: str) -> None:
    """Raise InputError naming the source and field for schema violations and broken cross-references."""
    error = first_error("taxonomy", document)
    if error is not None and error.validator == "pattern":
        hint = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
        raise InputError(
            f"{source}: {error.json_path}: {error.instance!r} does not match the expected format"
            + (f" ({hint})" if hint else "")
        )
    if error is not None:
        raise InputError(f"{source}: {describe(error)}")
    seen: dict[str, str] = {}
    for f, family in enumerate(document["families"]):
        for d, dimension in enumerate(family["dimensions"]):
            where = f"$.families[{f}].dimensions[{d}].id"
            if dimension["id"] in seen:
                raise InputError(
                    f"{source}: {where}: dimension id {dimension['id']!r} is already used at {seen[dimension['id']]}"
                )
            seen[dimension["id"]] = where
    for p, pair in enumerate(document.get("incompatible", [])):
        for i, dimension_id in enumerate(pair):
            if dimension_id not in seen:
                raise InputError(f"{source}: $.incompatible[{p}][{i}]: no dimension with id {dimension_id!r}")


def from_document(document: dict[str, Any], source: str) -> Taxonomy:
    """A Taxonomy from an already parsed document (validated here)."""
    check_document(document, source)
    dimensions: dict[str, Dimension] = {}
    for family in document["families"]:
        for d in family["dimensions"]:
            lexicon = d.get("lexicon", {})
            dimensions[d["id"]] = Dimension(
                id=d["id"],
                family=family["id"],
                name=d["name"],
                description=d["description"],
                intensities=dict(d["intensities"]),
                probe_anti=d["probe"]["anti"],
                probe_clean=d["probe"]["clean"],
                prefixes=tuple(lexicon.get("prefix", ())),
                suffixes=tuple(lexicon.get("suffix", ())),
                paper_dimension=d.get("paper_dimension"),
            )
    return Taxonomy(
        name=document["name"],
        version=document["version"],
        hash=content_hash(document),
        families=tuple((f["id"], f["name"]) for f in document["families"]),
        dimensions=dimensions,
        incompatible=frozenset(frozenset(pair) for pair in document.get("incompatible", [])),
    )


def read_document(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such taxonomy file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: $: a taxonomy is a JSON object")
    return value


def load_taxonomy(spec: str, root: Path | None = None) -> Taxonomy:
    """`builtin:NAME` or a JSON file path (relative to `root` when given and not absolute)."""
    if spec.startswith("builtin:"):
        name = spec.removeprefix("builtin:")
        if name not in BUILTIN_TAXONOMIES:
            raise InputError(
                f"taxonomy.path: no built-in taxonomy {name!r}; available: {', '.join(BUILTIN_TAXONOMIES)}"
            )
        path = Path(str(resources.files("curation") / "data" / BUILTIN_TAXONOMIES[name]))
        return from_document(read_document(path), spec)
    path = Path(spec).expanduser()
    if root is not None and not path.is_absolute():
        path = root / path
    return from_document(read_document(path), str(path))


def probe_texts(setting: str, root: Path) -> dict[str, tuple[str, str]]:
    """Dimension id → (anti pole text, clean pole text) of the taxonomy named by `[taxonomy] path`."""
    taxonomy = load_taxonomy(setting, root)
    return {d.id: (d.probe_anti, d.probe_clean) for d in taxonomy.dimensions.values()}
