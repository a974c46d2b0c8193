"""JSON Schema contracts: loading the documents in schemas/ and validating records against them."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, TypeChecker, validators
from jsonschema.exceptions import ValidationError

from curation.core.errors import RecordInvalid

RECORD_KINDS = (
    "base_prompt",
    "variant",
    "render",
    "pair",
    "score",
    "decision",
    "annotation",
    "verdict",
    "release",
    "audit",
    "judgment",
)
DOCUMENT_KINDS = (*RECORD_KINDS, "config", "taxonomy", "dataset_row")


def schema_dir() -> Path:
    """The folder holding the schema documents: curation/schemas in a wheel, schemas/ in a source tree."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "schemas"
    return packaged if packaged.is_dir() else package.parent / "schemas"


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema document for `kind`."""
    if kind not in DOCUMENT_KINDS:
        raise KeyError(f"no schema for {kind!r}")
    return json.loads((schema_dir() / f"{kind}.schema.json").read_text(encoding="utf-8"))


def _finite_number(checker: TypeChecker, instance: object) -> bool:
    return Draft202012Validator.TYPE_CHECKER.is_type(instance, "number") and math.isfinite(instance)  # type: ignore[arg-type]


# A JSON number is finite: NaN and inf are no "number" (nor "integer") in any record, config or row.
FiniteValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number),
)


@cache
def validator(kind: str) -> Draft202012Validator:
    """A compiled validator for `kind` (format checks on; NaN and inf are not numbers)."""
    compiled: Draft202012Validator = FiniteValidator(
        load_schema(kind), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return compiled


@cache
def fast_validator(kind: str) -> jsonschema_rs.Validator:
    """A compiled Rust validator for `kind`: the hot path when records enter the store (~1 µs a record)."""
    return jsonschema_rs.validator_for(load_schema(kind), validate_formats=True)


def first_error(kind: str, document: Any) -> ValidationError | None:
    """The most relevant violation of `kind`'s schema, or None when the document is valid.

    The compiled Rust validator answers "valid" in microseconds; only an invalid document (or one it cannot
    read) is walked by jsonschema for the error to report.
    """
    try:
        if fast_validator(kind).is_valid(document):
            return None
    except ValueError:
        pass
    errors = sorted(validator(kind).iter_errors(document), key=lambda e: (list(e.absolute_path), e.message))
    return errors[0] if errors else None


def describe(error: ValidationError) -> str:
    """`$.path.to[0].field: message`, the form every validation message uses."""
    return f"{error.json_path}: {error.message}"


def validate_record(kind: str, record: dict[str, Any]) -> None:
    """Raise RecordInvalid naming the record id and the JSON path of the first bad field."""
    error = first_error(kind, record)
    if error is not None:
        raise RecordInvalid(f"{kind} {record.get('id', '<no id>')}: {describe(error)}")
