"""The JSON Schema documents: valid against the metaschema, accepting good records, rejecting bad ones at the right path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from curation.core.contracts import (
    DOCUMENT_KINDS,
    RECORD_KINDS,
    fast_validator,
    first_error,
    schema_dir,
    validate_record,
)
from curation.core.errors import InputError, RecordInvalid
from tests.records import example


def test_every_document_kind_has_a_schema_file_and_nothing_else_is_there() -> None:
    files = {p.name.removesuffix(".schema.json") for p in schema_dir().glob("*.schema.json")}
    assert files == set(DOCUMENT_KINDS)


@pytest.mark.parametrize("kind", DOCUMENT_KINDS)
def test_schema_is_valid_2020_12(kind: str) -> None:
    document = json.loads((schema_dir() / f"{kind}.schema.json").read_text())
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("kind", RECORD_KINDS)
def test_good_example_passes(kind: str) -> None:
    validate_record(kind, example(kind))
    assert fast_validator(kind).is_valid(example(kind))


BROKEN: list[tuple[str, str, Any, str]] = [
    ("base_prompt", "text", "", "$.text"),
    ("base_prompt", "status", "maybe", "$.status"),
    ("variant", "intensity", "brutal", "$.intensity"),
    ("variant", "dimensions", ["Motion Blur"], "$.dimensions[0]"),
    ("render", "seed", -1, "$.seed"),
    ("render", "image_sha256", "not-a-hash", "$.image_sha256"),
    ("score", "value", "0.3", "$.value"),
    ("decision", "stage", "round:0", "$.stage"),
    ("annotation", "choice", "A", "$.choice"),
    ("verdict", "label", "yes", "$.label"),
    ("release", "version", "v1.0", "$.version"),
    ("judgment", "label", "maybe", "$.label"),
    ("judgment", "judge", "gpt-4o", "$.judge"),
]


@pytest.mark.parametrize(("kind", "field", "value", "path"), BROKEN)
def test_broken_record_fails_at_the_right_path(kind: str, field: str, value: Any, path: str) -> None:
    record = example(kind)
    record[field] = value
    error = first_error(kind, record)
    assert error is not None and error.json_path == path
    assert not fast_validator(kind).is_valid(record)
    with pytest.raises(RecordInvalid) as info:
        validate_record(kind, record)
    assert str(info.value).startswith(f"{kind} {record['id']}: {path}: ")


def test_nested_field_error_names_the_nested_path() -> None:
    record = example("variant")
    record["rewriter"]["kind"] = "gpt"
    with pytest.raises(RecordInvalid, match=r"\$\.rewriter\.kind: 'gpt' is not one of"):
        validate_record("variant", record)


def test_unknown_field_is_rejected() -> None:
    record = example("render")
    record["colour"] = "blue"
    with pytest.raises(RecordInvalid, match="Additional properties are not allowed"):
        validate_record("render", record)


def test_a_judgment_without_an_answer_has_no_label_and_says_why() -> None:
    record = example("judgment") | {"status": "failed", "error": "gave up"}
    with pytest.raises(RecordInvalid, match=r"judgment .*: \$\.label"):
        validate_record("judgment", record)  # a failure never carries a label
    validate_record("judgment", record | {"label": None})
    with pytest.raises(RecordInvalid, match=r"\$\.error"):
        validate_record("judgment", record | {"label": None, "error": ""})


def test_missing_score_is_null_not_zero_and_null_is_allowed() -> None:
    record = example("score")
    record.update(value=None, status="failed", error="image could not be decoded")
    validate_record("score", record)


def test_str_subclass_values_are_validated_by_the_reference_validator() -> None:
    class Version(str):
        pass

    record = example("base_prompt")
    record["source"] = Version("prompts.txt")
    validate_record("base_prompt", record)
    record["status"] = Version("maybe")
    with pytest.raises(RecordInvalid, match=r"\$\.status"):
        validate_record("base_prompt", record)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_inf_are_no_numbers_in_any_record_or_config(value: float) -> None:
    from curation.core import config

    score = example("score") | {"value": value}
    with pytest.raises(RecordInvalid, match=r"\$\.value: .* is not of type 'number'"):
        validate_record("score", score)
    verdict = example("verdict") | {"agreement": value}
    with pytest.raises(RecordInvalid, match=r"\$\.agreement"):
        validate_record("verdict", verdict)
    with pytest.raises(InputError, match=r"filter\.min_fidelity = .*expected number"):
        config.resolve({"filter": {"min_fidelity": value}})


def test_a_non_finite_score_is_built_as_a_failure_row() -> None:
    from curation.core.records import score_record

    row = score_record("0" * 16, "fidelity", "tiny-clip", float("nan"))
    assert (row["status"], row["value"]) == ("failed", None)
    assert "fidelity is nan, not a finite number" in row["error"]
    validate_record("score", row)
