"""The training-ready configs of a release (`preference`, `sft`): loaded with `datasets`, checked row by row
against the store."""

from __future__ import annotations

import pytest
import yaml
from datasets import Image, load_dataset
from huggingface_hub import DatasetCard

from curation.core.config import set_value
from curation.core.errors import InputError
from curation.core.pairs import iter_pairs
from curation.core.records import verdict_record
from curation.core.workspace import Workspace
from exports.derived import PREFERENCE_FEATURES, SFT_FEATURES
from exports.export import export_version
from tests.dataset_fixtures import populate
from tests.records import NOW

pytestmark = pytest.mark.slow  # every test builds a release and loads it back through `datasets`


def configure(ws: Workspace, **values: object) -> None:
    for key, value in values.items():
        set_value(ws.config_path, "export", key, value)
    ws.reload_config()


def images_of(ws: Workspace) -> dict[str, tuple[bytes, bytes]]:
    """pair id -> (anti PNG, base PNG) as stored."""
    return {
        p.id: (ws.images.read(p.anti_render["image_sha256"]), ws.images.read(p.base_render["image_sha256"]))
        for p in iter_pairs(ws.store)
    }


def test_preference_and_sft_configs_load_and_hold_the_decided_pairs(workspace: Workspace) -> None:
    configure(workspace, hard_negatives=True)
    pair_ids = populate(workspace, 14)  # every other pair has a human "anti" verdict; CLIP decided every pair
    tie, base_wins = pair_ids[1], pair_ids[3]
    for pair_id, label in ((tie, "tie"), (base_wins, "base")):
        votes = {"anti": 0, "base": 0, "tie": 0} | {label: 3}
        resolved = {"label": label, "votes": votes, "agreement": 1.0, "annotators": 3}
        workspace.store.put("verdict", [verdict_record(pair_id, 2, resolved, created_at=NOW)])
    release = export_version(workspace, "1.0.0")
    stored = images_of(workspace)
    default = load_dataset(str(release.path), "default", split="train")
    negatives = load_dataset(str(release.path), "hard_negatives", split="train")
    released = {r["id"]: r for r in [*default, *negatives]}

    pairs = load_dataset(str(release.path), "preference", split="train")
    assert pairs.features == PREFERENCE_FEATURES
    assert tie not in pairs["id"]  # a tie is no preference
    # A CLIP reject for low fidelity says nothing about which image follows the prompt better: no preference.
    low_fidelity = {i for i, r in released.items() if r["clip_outcome"] == "reject" and r["decided_by"] == "clip"}
    assert low_fidelity and sorted(pairs["id"]) == sorted(set(released) - {tie} - low_fidelity)
    for row in pairs.with_format(None).cast_column("chosen", Image(decode=False)):
        anti, base = stored[row["id"]]
        expected_chosen = anti if row["chosen_is_anti"] else base
        assert row["chosen"]["bytes"] == expected_chosen  # the original PNG, not re-encoded
        verdict = released[row["id"]]["verdict"]
        if row["id"] == base_wins:
            assert (row["source"], row["chosen_is_anti"]) == ("human", False)
        elif verdict == "anti":
            assert (row["source"], row["chosen_is_anti"]) == ("human", True)
        else:
            assert (row["source"], row["chosen_is_anti"], released[row["id"]]["clip_outcome"]) == (
                "clip",
                True,
                "accept",
            )
        assert row["prompt"] == released[row["id"]]["anti_prompt"]

    sft = load_dataset(str(release.path), "sft", split="train")
    assert sft.features == SFT_FEATURES
    assert sft["id"] == default["id"] and sft["text"] == default["anti_prompt"]
    raw = sft.cast_column("image", Image(decode=False))
    assert [r["image"]["bytes"] for r in raw] == [stored[i][0] for i in sft["id"]]

    card = DatasetCard.load(release.path / "README.md")
    infos = {info["config_name"]: info for info in card.data.to_dict()["dataset_info"]}
    assert infos["preference"]["splits"][0]["num_examples"] == len(pairs)
    assert infos["sft"]["splits"][0]["num_examples"] == len(sft)
    assert {f["name"] for f in infos["preference"]["features"]} == set(PREFERENCE_FEATURES)
    assert "--dataset_config_name=sft --image_column=image --caption_column=text" in card.text
    assert f"Config `preference` ({len(pairs)} rows)" in card.text
    assert 'pairs.rename_columns({"prompt": "caption", "chosen": "jpg_0", "rejected": "jpg_1"})' in card.text


def test_training_configs_follow_the_config(workspace: Workspace) -> None:
    populate(workspace, 6)
    configure(workspace, training_configs=["sft"])
    release = export_version(workspace, "1.0.0")
    assert (release.path / "sft").is_dir() and not (release.path / "preference").exists()
    card = (release.path / "README.md").read_text()
    assert "Config `sft`" in card and "Config `preference`" not in card
    # Without hard negatives, preference holds the released rows only.
    configure(workspace, training_configs=["preference", "sft"])
    second = export_version(workspace, "1.1.0")
    assert sorted(load_dataset(str(second.path), "preference", split="train")["id"]) == sorted(
        load_dataset(str(second.path), "default", split="train")["id"]
    )
    with pytest.raises(Exception, match="training_configs"):
        configure(workspace, training_configs=["dpo"])


def test_the_release_says_how_to_cite_it(workspace: Workspace) -> None:
    populate(workspace, 3)
    configure(workspace, authors=["Ada Lovelace", "Widespec Lab"], pretty_name="Anti test set")
    release = export_version(workspace, "1.2.0")
    cff = yaml.safe_load((release.path / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "dataset"
    assert (cff["title"], cff["version"], cff["license"]) == ("Anti test set", "1.2.0", "CC-BY-4.0")  # SPDX
    assert [a["name"] for a in cff["authors"]] == ["Ada Lovelace", "Widespec Lab"]
    paper = cff["references"][0]
    assert paper["identifiers"] == [{"type": "other", "value": "arXiv:2512.11883"}]
    assert paper["title"] == "Position: Universal Aesthetic Alignment Narrows Artistic Expression"
    assert [(a["given-names"], a["family-names"]) for a in paper["authors"]] == [
        ("Wenqi Marshall", "Guo"),
        ("Qingyun", "Qian"),
        ("Khalad", "Hasan"),
        ("Shan", "Du"),
    ]
    assert "ICML 2026" in paper["collection-title"] and paper["year"] == 2026
    card = (release.path / "README.md").read_text()
    assert "@misc{anti_test_set_v1_2_0," in card and "author = {Ada Lovelace} and {Widespec Lab}," in card
    assert "eprint = {2512.11883}," in card and "version = {1.2.0}," in card
    assert "title = {Position: Universal Aesthetic Alignment Narrows Artistic Expression}," in card
    assert "author = {Guo, Wenqi Marshall and Qian, Qingyun and Hasan, Khalad and Du, Shan}," in card


def test_a_dataset_license_granting_more_than_a_generator_allows_is_refused(workspace: Workspace) -> None:
    flux = "black-forest-labs/FLUX.1-dev"
    populate(workspace, 4, model=flux, license="flux-1-dev-non-commercial-license")
    with pytest.raises(InputError, match=r"project.license = 'cc-by-4.0' may grant more than the images allow: "):
        export_version(workspace, "1.0.0")
    assert not list(workspace.exports_dir.glob("v1.0.0*")) and workspace.store.count("release") == 0
    accepted = export_version(workspace, "1.0.0", accept_license_mix=True)
    card = (accepted.path / "README.md").read_text()
    assert "**License mix accepted by the curator**" in card and "competes with FLUX.1 [dev]" in card
    set_value(workspace.config_path, "project", "license", "other")
    workspace.reload_config()
    other = export_version(workspace, "1.1.0")  # the curator states the terms: no mix
    assert "License mix" not in (other.path / "README.md").read_text()
