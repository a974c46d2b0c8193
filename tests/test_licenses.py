"""A generator's license comes from the model itself (its Hub id or its model card), never from how it was named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.core.config import defaults
from curation.core.errors import InputError
from curation.core.settings import GeneratorSettings
from curation.core.workspace import Workspace
from curation.generate.device import DeviceChoice
from curation.generate.models import LocatedModel, resolve_spec
from curation.generate.stage import generator_fields
from exports.export import export_version
from tests.dataset_fixtures import populate

FLUX_DEV_LICENSE = "flux-1-dev-non-commercial-license"
CPU = DeviceChoice("cpu", "float32")


def pipeline_folder(folder: Path, card: str | None = None) -> Path:
    """A folder that passes for a diffusers pipeline, with `card` as its README.md (none when None)."""
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    if card is not None:
        (folder / "README.md").write_text(card, encoding="utf-8")
    return folder


def recorded_license(spec_text: str, root: Path, folder: Path, revision: str) -> object:
    """The license the renders of `spec_text`, found in `folder` at `revision`, record."""
    spec = resolve_spec(spec_text, GeneratorSettings.from_table(defaults()["generator"]), root)
    return generator_fields(LocatedModel(spec, folder, revision), CPU, "exact", 1, cpu_threads=1)["license"]


def test_a_raw_hub_id_records_the_license_its_preset_would(tmp_path: Path) -> None:
    snapshot = pipeline_folder(tmp_path / "snapshot")
    for spec in ("black-forest-labs/FLUX.1-dev", "flux.1-dev", "black-forest-labs/flux.1-dev@abc"):
        assert recorded_license(spec, tmp_path, snapshot, "0" * 40) == FLUX_DEV_LICENSE


def test_a_local_folder_records_the_license_of_its_model_card(tmp_path: Path) -> None:
    carded = pipeline_folder(tmp_path / "carded", "---\nlicense: openrail++\ntags: [art]\n---\n# My model\n")
    assert recorded_license(str(carded), tmp_path, carded, "sha256:0") == "openrail++"
    other = pipeline_folder(
        tmp_path / "other",
        "---\nlicense: other\nlicense_name: flux-1-dev-non-commercial-license\nlicense_link: LICENSE.md\n---\n",
    )
    assert recorded_license(str(other), tmp_path, other, "sha256:1") == FLUX_DEV_LICENSE
    bare = pipeline_folder(tmp_path / "bare")
    assert recorded_license(str(bare), tmp_path, bare, "sha256:2") == "unknown"
    no_front_matter = pipeline_folder(tmp_path / "plain", "# A model\n\nNo metadata here.\n")
    assert recorded_license(str(no_front_matter), tmp_path, no_front_matter, "sha256:3") == "unknown"
    broken = pipeline_folder(tmp_path / "broken", "---\nlicense: [unclosed\n---\n")
    assert recorded_license(str(broken), tmp_path, broken, "sha256:4") == "unknown"


def test_a_hub_model_reads_the_card_in_the_hugging_face_cache(tmp_path: Path) -> None:
    from huggingface_hub import constants

    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = Path(constants.HF_HUB_CACHE) / "models--widespec-tests--carded-model"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    weights = pipeline_folder(tmp_path / "weights")  # the card is not beside the weights, only in the cache
    assert recorded_license("widespec-tests/carded-model", tmp_path, weights, commit) == "cc-by-nc-4.0"
    assert recorded_license("widespec-tests/uncarded-model", tmp_path, weights, commit) == "unknown"


@pytest.mark.slow
def test_raw_flux_dev_renders_under_a_cc_by_dataset_license_are_refused(workspace: Workspace) -> None:
    """Renders recorded before their license was known (license null) are judged by the model they name."""
    populate(workspace, 4, model="black-forest-labs/FLUX.1-dev", license=None)
    with pytest.raises(InputError, match=r"project.license = 'cc-by-4.0' .*competes with FLUX.1 \[dev\]"):
        export_version(workspace, "1.0.0")
    assert workspace.store.count("release") == 0


@pytest.mark.slow
def test_an_unknown_generator_license_is_refused_and_stated_when_accepted(workspace: Workspace) -> None:
    populate(workspace, 4, model="someone/uncarded-model", license="unknown")
    with pytest.raises(InputError, match=r"someone/uncarded-model \(license unknown\)"):
        export_version(workspace, "1.0.0")
    release = export_version(workspace, "1.0.0", accept_license_mix=True)
    card = (release.path / "README.md").read_text()
    assert "`someone/uncarded-model`" in card and "license `unknown`" in card and "license `None`" not in card
    assert "**License mix accepted by the curator**" in card
    croissant = json.loads((release.path / "croissant.json").read_text())
    assert "someone/uncarded-model (license unknown)" in croissant["rai:dataCollection"]
