"""widespec.toml: defaults, comments, validation errors that name the key, in-place edits."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from curation.core import config
from curation.core.contracts import load_schema
from curation.core.errors import InputError


def test_default_toml_holds_every_key_with_its_default_and_a_comment() -> None:
    text = config.default_toml()
    assert tomllib.loads(text) == config.defaults()
    sections = load_schema("config")["properties"]
    for name, section in sections.items():
        header = f"[{name}] # {section['description']}"
        assert header in text
        block = text.split(header, 1)[1].split("\n[", 1)[0].splitlines()
        for key, spec in section["properties"].items():
            if isinstance(spec["default"], dict):
                assert f"[{name}.{key}] # {spec['description']}" in text
                continue
            line = next(line for line in block if line.startswith(f"{key} = "))
            assert line.endswith(f"# {spec['description']}"), line


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"rewriter": {"temperature": "hot"}}, "widespec.toml: rewriter.temperature = 'hot': expected number"),
        ({"rewriter": {"kind": "gpt"}}, "widespec.toml: rewriter.kind = 'gpt': expected one of 'lexicon', 'llm'"),
        ({"prompts": {"max_chars": 0}}, "widespec.toml: prompts.max_chars = 0: expected a value >= 1"),
        ({"prompts": {"max_char": 10}}, "widespec.toml: prompts.max_char: unknown key"),
        ({"generatr": {}}, "widespec.toml: generatr: unknown key"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_was_expected(user: dict, message: str) -> None:
    with pytest.raises(InputError) as info:
        config.resolve(user)
    assert str(info.value).startswith(message)


def test_user_values_override_defaults_and_the_rest_stay() -> None:
    resolved = config.resolve({"project": {"seed": 7}})
    assert resolved["project"]["seed"] == 7
    assert resolved["project"]["license"] == config.defaults()["project"]["license"]
    assert config.config_hash(resolved) != config.config_hash(config.defaults())


def test_broken_toml_is_a_one_line_error_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "widespec.toml"
    path.write_text("[project\nseed = 1\n")
    with pytest.raises(InputError, match=r"widespec.toml: not valid TOML: .*line 1"):
        config.load(path)


def test_set_value_keeps_comments_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "widespec.toml"
    path.write_text(config.default_toml())
    config.set_value(path, "filter", "min_fidelity", 0.25, comment="calibrated on round 1")
    text = path.read_text()
    assert "min_fidelity = 0.25 # calibrated on round 1" in text
    assert "seed = 0 # Project seed" in text
    assert config.load(path)["filter"]["min_fidelity"] == 0.25
    with pytest.raises(InputError, match=r"filter\.min_fidelity"):
        config.set_value(path, "filter", "min_fidelity", 5.0)
    assert config.load(path)["filter"]["min_fidelity"] == 0.25


def test_typed_sections_hold_exactly_the_schema_keys_with_their_types() -> None:
    import dataclasses
    import typing

    from curation.core.settings import SECTION_TYPES, Settings

    sections = load_schema("config")["properties"]
    assert set(SECTION_TYPES) == set(sections) == {f.name for f in dataclasses.fields(Settings)}
    json_types = {"string": str, "integer": int, "number": float, "boolean": bool, "array": tuple, "object": dict}
    settings = Settings.from_config(config.defaults())
    for name, section_type in SECTION_TYPES.items():
        schema_keys = sections[name]["properties"]
        assert [f.name for f in dataclasses.fields(section_type)] == list(schema_keys), name
        hints = typing.get_type_hints(section_type)
        for key, spec in schema_keys.items():
            value = getattr(getattr(settings, name), key)
            assert isinstance(value, json_types[spec["type"]]), (name, key, value)
            if "enum" in spec:
                assert typing.get_args(hints[key]) == tuple(spec["enum"]), (name, key)


def test_typed_sections_follow_the_file_and_survive_pickling(tmp_path: Path) -> None:
    import pickle

    from curation.core.settings import Settings

    path = tmp_path / "widespec.toml"
    path.write_text(config.default_toml())
    config.set_value(path, "generator", "guidance", 7)
    config.set_value(path, "filter.dimensions.blurry", "min_probe", 0.25)
    settings = Settings.from_config(config.load(path))
    assert settings.generator.guidance == 7.0 and isinstance(settings.generator.guidance, float)
    assert settings.filter.dimensions == {"blurry": {"min_probe": 0.25}}
    assert settings.rewriter.intensities == ("mild", "moderate", "extreme")
    assert pickle.loads(pickle.dumps(settings)) == settings  # stage computes carry sections to other processes
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.generator.steps = 1  # type: ignore[misc]
