"""The card and croissant.json say what happened to the released rows: the prompts' language as checked, and
human curation only where a human round decided rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import DatasetCard

from benchmarks.synthetic_releases import PairSpec, add_pairs
from curation.core.workspace import Workspace
from exports.export import export_version

HUMAN = PairSpec(verdict=(1, "anti", {"anti": 3}))


def released(ws: Workspace, version: str = "1.0.0") -> tuple[str, dict[str, Any], Path]:
    release = export_version(ws, version)
    card = (release.path / "README.md").read_text(encoding="utf-8")
    return card, json.loads((release.path / "croissant.json").read_text(encoding="utf-8")), release.path


def retext(ws: Workspace, texts: list[str]) -> None:
    """Give the stored base prompts `texts` and their variants the same text plus a suffix."""
    bases = sorted(ws.store.iter("base_prompt"), key=lambda b: b["id"])
    ws.store.put("base_prompt", [{**b, "text": t} for b, t in zip(bases, texts, strict=True)], on_conflict="replace")
    by_base = {b["id"]: t for b, t in zip(bases, texts, strict=True)}
    variants = [{**v, "text": by_base[v["base_id"]] + ", flou et sombre"} for v in ws.store.iter("variant")]
    ws.store.put("variant", variants, on_conflict="replace")


@pytest.mark.slow
def test_a_release_decided_by_clip_alone_claims_no_human_curation(workspace: Workspace) -> None:
    add_pairs(workspace, [PairSpec()] * 3)
    card, croissant, _ = released(workspace)
    assert croissant["rai:dataCollectionType"] == ["Machine generated"]
    assert "Label Studio" not in json.dumps(croissant) and "rai:annotatorDemographics" not in croissant
    assert "human verdicts" not in croissant["description"] and "annotator" not in json.dumps(croissant)
    assert "Human verdicts come from a small pool" not in card and "Krippendorff" not in card
    assert "No human round decided the rows of this release" in card

    add_pairs(workspace, [HUMAN], start=10)
    card, croissant, _ = released(workspace, "1.1.0")
    assert croissant["rai:dataCollectionType"] == ["Manual Human Curation", "Machine generated"]
    assert croissant["rai:dataAnnotationPlatform"] == ["Label Studio"]
    assert croissant["rai:annotatorDemographics"] == ["not collected"]
    assert "Human verdicts come from a small pool" in card and "round 1:" in card


@pytest.mark.slow
def test_non_english_prompts_are_not_called_english(workspace: Workspace) -> None:
    add_pairs(workspace, [PairSpec()] * 2)
    retext(workspace, ["un chat gris sur le rebord de la fenêtre", "ein grauer Hund mit einem roten Ball"])
    card, croissant, folder = released(workspace)
    assert "Prompts are English" not in card and "Prompts are English" not in json.dumps(croissant)
    assert "undetermined" in " ".join(croissant["rai:dataBiases"])
    assert "undetermined" in card
    assert "language" not in (DatasetCard.load(folder / "README.md").data.to_dict())  # no language claimed


@pytest.mark.slow
def test_english_prompts_are_said_to_be_english_as_detected(workspace: Workspace) -> None:
    add_pairs(workspace, [PairSpec()] * 2)
    card, croissant, folder = released(workspace)
    assert "Prompts are English (detected" in " ".join(croissant["rai:dataBiases"]) and "Prompts are English" in card
    assert DatasetCard.load(folder / "README.md").data.language == ["en"]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("a red bicycle leaning against a brick wall", "en"),
        ("two dogs playing in the snow, blurry and badly lit", "en"),
        ("a café in Paris at night", "en"),
        ("un chat gris sur le rebord de la fenêtre", "undetermined"),
        ("een kat op de bank, dat is vreemd", "undetermined"),
        ("a la playa con el perro", "undetermined"),
        ("窓辺の灰色の猫", "undetermined"),
        ("sunset", "undetermined"),  # too short to tell
        ("", "undetermined"),
    ],
)
def test_prompt_language_heuristic(text: str, language: str) -> None:
    from exports.languages import prompt_language

    assert prompt_language(text) == language
