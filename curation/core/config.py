"""widespec.toml: defaults from schemas/config.schema.json, validation with errors that name the key."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import tomlkit
from jsonschema.exceptions import ValidationError

from curation.core.contracts import first_error, load_schema
from curation.core.errors import InputError
from curation.core.files import write_atomic
from curation.core.ids import content_hash

Config = dict[str, dict[str, Any]]
CONFIG_FILE = "widespec.toml"


def _sections() -> dict[str, dict[str, Any]]:
    properties: dict[str, dict[str, Any]] = load_schema("config")["properties"]
    return properties


def defaults() -> Config:
    """Every section and key with its default value."""
    return {
        name: {key: copy.deepcopy(spec["default"]) for key, spec in section["properties"].items()}
        for name, section in _sections().items()
    }


def _expected(error: ValidationError) -> str:
    """What the schema wanted, in words."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    match error.validator:
        case "type":
            return f"expected {' or '.join(schema['type']) if isinstance(schema['type'], list) else schema['type']}"
        case "enum":
            return "expected one of " + ", ".join(repr(v) for v in schema["enum"])
        case "minimum" | "exclusiveMinimum" | "maximum" | "exclusiveMaximum":
            sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
            return f"expected a value {sign[str(error.validator)]} {error.validator_value}"
        case "additionalProperties":
            return "unknown key (see `widespec init` for the full list)"
        case _:
            return error.message


def validate(config: dict[str, Any], source: str = CONFIG_FILE) -> None:
    """Raise InputError naming the key, the bad value and what was expected."""
    error = first_error("config", config)
    if error is None:
        return
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        known = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
        extra = sorted(set(error.instance) - known) if isinstance(error.instance, dict) else []
        path = [*path, extra[0]] if extra else path
        raise InputError(f"{source}: {'.'.join(path)}: {_expected(error)}")
    raise InputError(f"{source}: {'.'.join(path)} = {error.instance!r}: {_expected(error)}")


def resolve(user: dict[str, Any], source: str = CONFIG_FILE) -> Config:
    """Defaults overlaid with the user's values, validated."""
    merged = defaults()
    validate(user, source)
    for section, values in user.items():
        merged[section].update(values)
    validate(merged, source)
    return merged


def load(path: Path) -> Config:
    """Read, merge with defaults and validate a widespec.toml."""
    try:
        user = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (is this a widespec workspace? see `widespec init`)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    return resolve(user, str(path))


def default_toml() -> str:
    """The default widespec.toml: every key present with its default and a one-line comment."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment("widespec workspace configuration; schema: schemas/config.schema.json"))
    doc.add(tomlkit.comment("Secrets are never written here: keys name the environment variable that holds them."))
    for name, section in _sections().items():
        table = tomlkit.table()
        table.comment(section["description"])
        for key, spec in section["properties"].items():
            value = tomlkit.item(spec["default"])
            value.comment(spec["description"])
            table.add(key, value)
        doc.add(tomlkit.nl())
        doc.add(name, table)
    return tomlkit.dumps(doc)


def config_hash(config: Config) -> str:
    """A hash of the resolved configuration, recorded with every stage run."""
    return content_hash(config)


def set_value(path: Path, section: str, key: str, value: Any, comment: str | None = None) -> None:
    """Change one key in widespec.toml in place, keeping every other line and comment.

    `section` may be dotted (`filter.dimensions.blurry`) to reach a nested table, made if missing.
    """
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    table: Any = doc
    for name in section.split("."):
        table = table.setdefault(name, tomlkit.table())
    item = tomlkit.item(value)
    if comment:
        item.comment(comment)
    table[key] = item
    text = tomlkit.dumps(doc)
    resolve(tomllib.loads(text), str(path))
    write_atomic(path, text)
