"""croissant.json: valid for mlcroissant, its record sets readable, their first records the shards' first rows."""

from __future__ import annotations

import io
import json
import logging

import mlcroissant as mlc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curation.core.config import set_value
from curation.core.workspace import Workspace
from exports.export import export_version
from tests.dataset_fixtures import populate

pytestmark = pytest.mark.slow
CONFIGS = {"default": "data", "hard_negatives": "hard_negatives", "preference": "preference", "sft": "sft"}


def test_croissant_validates_and_every_record_set_reads_the_shards(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    set_value(workspace.config_path, "export", "hard_negatives", True)
    workspace.reload_config()
    populate(workspace, 8, license="openrail++")
    release = export_version(workspace, "1.0.0")
    path = release.path / "croissant.json"
    with caplog.at_level(logging.WARNING):
        dataset = mlc.Dataset(jsonld=str(path))  # raises on an invalid document
    assert "not standard" not in caplog.text  # the official @context
    assert not dataset.metadata.issues.errors and not dataset.metadata.issues.warnings
    document = json.loads(path.read_text())
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert document["version"] == "1.0.0" and document["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert document["rai:annotatorDemographics"] == ["not collected"]
    set_value(workspace.config_path, "export", "annotator_demographics", ["3 annotators, adults, self-described"])
    workspace.reload_config()
    again = json.loads((export_version(workspace, "1.1.0").path / "croissant.json").read_text())
    assert again["rai:annotatorDemographics"] == ["3 annotators, adults, self-described"]
    assert "builtin:tiny-sd (license openrail++)" in document["rai:dataCollection"]
    assert "eprint = {2512.11883}" in document["citeAs"]

    for config, folder in CONFIGS.items():
        first = next(iter(dataset.records(record_set=config)))
        shard = sorted((release.path / folder).glob("*.parquet"))[0]
        row = pq.ParquetFile(shard).read_row_group(0).to_pylist()[0]
        assert first[f"{config}/id"].decode() == row["id"]
        for name, value in row.items():
            got = first[f"{config}/{name}"]
            if isinstance(value, dict) and "bytes" in value:  # an image: the same pixels as the stored PNG
                assert got.tobytes() == Image.open(io.BytesIO(value["bytes"])).tobytes()
            elif isinstance(value, str):
                assert got.decode() == value
            elif isinstance(value, list):  # mlcroissant reads a missing float in a list as NaN
                read = [v.decode() if isinstance(v, bytes) else (None if v != v else v) for v in got]
                assert read == value
            elif isinstance(value, dict):  # votes
                assert {k.rsplit("/", 1)[1]: v for k, v in got.items()} == value
            elif value is not None:
                assert got == pytest.approx(value)
