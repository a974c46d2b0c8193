"""The taxonomy: the built-in document, user files, the loader's cross-reference checks and the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation.app.cli import app
from curation.core.errors import InputError
from curation.core.taxonomy import load_taxonomy, read_document

BUILTIN = "builtin:widespec-core"
PAPER_SYNTHETIC = {
    "background", "clarity", "colour_aesthetic", "colour_brightness", "detail_realism", "detail_refinement",
    "emotion", "lighting_distinction", "main_object", "object_pairing", "richness",
}  # fmt: skip


def builtin_document() -> dict:
    return read_document(Path(__file__).parent.parent / "curation" / "data" / "taxonomy.json")


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_builtin_covers_the_paper_and_style_subversions() -> None:
    taxonomy = load_taxonomy(BUILTIN)
    assert len(taxonomy.families) >= 6 and len(taxonomy.dimensions) >= 25
    paper = {d.paper_dimension for d in taxonomy.dimensions.values() if d.paper_dimension}
    assert {p.removeprefix("synthetic.") for p in paper if p.startswith("synthetic.")} >= PAPER_SYNTHETIC
    families = {f for f, _ in taxonomy.families}
    assert {"clarity_focus", "colour_tone", "lighting_exposure", "composition_structure", "emotion_subject"} <= families
    assert {"kitsch", "ms_paint", "glitch_art", "stock_photo"} <= set(taxonomy.dimensions)
    assert not taxonomy.compatible("underexposed", "overexposed")
    assert taxonomy.compatible("blurry", "decay")


def test_hash_follows_content(tmp_path: Path) -> None:
    builtin = load_taxonomy(BUILTIN)
    same = load_taxonomy(str(write(tmp_path, builtin_document())))
    assert same.hash == builtin.hash and len(builtin.hash) == 64
    changed = builtin_document()
    changed["families"][0]["dimensions"][0]["intensities"]["mild"] = "a touch soft"
    assert load_taxonomy(str(write(tmp_path, changed))).hash != builtin.hash


def test_duplicate_dimension_id_is_named(tmp_path: Path) -> None:
    document = builtin_document()
    document["families"][1]["dimensions"].append(copy.deepcopy(document["families"][0]["dimensions"][0]))
    with pytest.raises(
        InputError,
        match=r"\$\.families\[1\]\.dimensions\[\d+\]\.id: dimension id 'blurry' is already used at \$\.families\[0\]\.dimensions\[0\]\.id",
    ):
        load_taxonomy(str(write(tmp_path, document)))


def test_unknown_incompatible_id_is_named(tmp_path: Path) -> None:
    document = builtin_document()
    document["incompatible"].append(["blurry", "no_such_dimension"])
    with pytest.raises(InputError, match=r"\$\.incompatible\[\d+\]\[1\]: no dimension with id 'no_such_dimension'"):
        load_taxonomy(str(write(tmp_path, document)))


def test_schema_violation_names_the_field(tmp_path: Path) -> None:
    document = builtin_document()
    del document["families"][2]["dimensions"][1]["probe"]
    with pytest.raises(InputError, match=r"\$\.families\[2\]\.dimensions\[1\]: 'probe' is a required property"):
        load_taxonomy(str(write(tmp_path, document)))


def test_bad_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        load_taxonomy(str(bad))
    with pytest.raises(InputError, match="no such taxonomy file"):
        load_taxonomy(str(tmp_path / "missing.json"))
    with pytest.raises(InputError, match="no built-in taxonomy 'nope'"):
        load_taxonomy("builtin:nope")


def test_cli_show_and_validate(tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["taxonomy", "show", "--file", BUILTIN, "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["name"] == "widespec-core" and len(data["dimensions"]) == len(load_taxonomy(BUILTIN).dimensions)
    assert ["overexposed", "underexposed"] in data["incompatible"]
    table = runner.invoke(app, ["taxonomy", "show", "--file", BUILTIN])
    assert table.exit_code == 0 and "blurry" in table.stdout
    good = runner.invoke(app, ["taxonomy", "validate", str(write(tmp_path, builtin_document()))])
    assert good.exit_code == 0 and "valid taxonomy widespec-core" in good.stdout
    document = builtin_document()
    document["version"] = "one"
    bad = runner.invoke(app, ["taxonomy", "validate", str(write(tmp_path, document))])
    assert isinstance(bad.exception, InputError) and bad.exception.exit_code == 2
    assert "$.version: 'one' does not match the expected format" in str(bad.exception)
