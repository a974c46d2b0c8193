"""Pure parts of the generate stage: seeds, planning, shards, image checks, device choice, model entries."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curation.core.config import defaults
from curation.core.errors import InputError
from curation.core.settings import GeneratorSettings
from curation.generate.device import choose_device
from curation.generate.images import check_image, encode_png
from curation.generate.models import RenderSettings, resolve_spec
from curation.generate.plan import VariantRow, plan_renders, select_jobs
from curation.generate.presets import PRESETS
from curation.generate.seeds import parse_shard, render_seed, shard_of

SETTINGS = RenderSettings(steps=2, guidance=3.5, width=64, height=64)
BASES = {f"{i:016x}": f"base prompt {i}" for i in range(1, 13)}
VARIANTS = [
    VariantRow(f"{i:015x}{k}", base, f"{text} but ugly {k}")
    for i, (base, text) in enumerate(BASES.items())
    for k in range(3)
]


GENERATOR = {
    "model": "builtin:tiny-sd",
    "revision": "sha256:" + "1" * 64,
    "pipeline": "StableDiffusionPipeline",
    "scheduler": "EulerDiscreteScheduler",
    "dtype": "float32",
    "batch_mode": "exact",
    "batch_size": None,
    "call_kwargs": {},
}


def plan(seeds_per_pair: int = 1, model: str = "builtin:tiny-sd", **generator: object) -> list:
    return plan_renders(
        generator={**GENERATOR, "model": model, **generator},
        settings=SETTINGS,
        base_texts=BASES,
        variants=VARIANTS,
        project_seed=7,
        seeds_per_pair=seeds_per_pair,
    )


def test_seed_depends_on_project_base_and_index_only() -> None:
    seed = render_seed(7, "00000000000000aa", 0)
    assert seed == render_seed(7, "00000000000000aa", 0)
    assert (
        len(
            {
                seed,
                render_seed(8, "00000000000000aa", 0),
                render_seed(7, "00000000000000ab", 0),
                render_seed(7, "00000000000000aa", 1),
            }
        )
        == 4
    )
    assert 0 <= seed < 2**31


def test_plan_shares_one_base_render_per_base_and_seed() -> None:
    jobs = plan(seeds_per_pair=2)
    bases = [j for j in jobs if j.prompt_kind == "base"]
    variants = [j for j in jobs if j.prompt_kind == "variant"]
    assert len(bases) == len(BASES) * 2 and len(variants) == len(VARIANTS) * 2
    assert len({j.render_id for j in jobs}) == len(jobs)
    base_seed = {(j.prompt_id, j.group): j.seed for j in bases}
    by_id = {v.id: v for v in VARIANTS}
    for job in variants:
        assert job.seed == base_seed[(by_id[job.prompt_id].base_id, job.group)]
    # Another model makes its own renders with the same seeds.
    other = plan(seeds_per_pair=2, model="builtin:tiny-flux")
    assert not {j.render_id for j in other} & {j.render_id for j in jobs}
    assert sorted(j.seed for j in other) == sorted(j.seed for j in jobs)


def test_variant_without_its_base_prompt_is_not_planned() -> None:
    jobs = plan_renders(
        generator={**GENERATOR, "model": "m/x"},
        settings=SETTINGS,
        base_texts={},
        variants=VARIANTS,
        project_seed=0,
        seeds_per_pair=1,
    )
    assert jobs == []


def test_shards_partition_the_work_and_keep_groups_together() -> None:
    jobs = plan(seeds_per_pair=2)
    shards = [select_jobs(jobs, done=set(), shard=(i, 3)) for i in range(3)]
    ids = [j.render_id for shard in shards for j in shard]
    assert sorted(ids) == sorted(j.render_id for j in jobs)
    assert all(shards), "12 groups over 3 shards should leave none empty"
    owner = {j.group: i for i, shard in enumerate(shards) for j in shard}
    assert all(owner[j.group] == shard_of(j.group, 3) for j in jobs)


def test_select_skips_done_and_limits() -> None:
    jobs = plan()
    done = {jobs[0].render_id, jobs[5].render_id}
    chosen = select_jobs(jobs, done=done, limit=4)
    assert [j.render_id for j in chosen] == [j.render_id for j in jobs if j.render_id not in done][:4]


@pytest.mark.parametrize("text", ["1", "1/0", "2/2", "-1/2", "a/b", "1/2/3"])
def test_bad_shard_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="--shard"):
        parse_shard(text)


def test_parse_shard() -> None:
    assert parse_shard("3/4") == (3, 4)


def test_image_checks() -> None:
    rng = np.random.default_rng(0)
    good = rng.random((8, 8, 3), dtype=np.float32)
    assert check_image(good) is None
    nan = good.copy()
    nan[2, 3, 1] = np.nan
    assert "NaN" in (check_image(nan) or "")
    assert "constant" in (check_image(np.full((8, 8, 3), 0.25, dtype=np.float32)) or "")
    assert "constant" in (check_image(np.zeros((8, 8, 3), dtype=np.float32)) or "")
    assert "safety checker" in (check_image(good, nsfw_flagged=True) or "")


def test_png_bytes_are_deterministic_and_lossless_for_8_bit_pixels() -> None:
    image = np.random.default_rng(1).random((16, 16, 3), dtype=np.float32)
    png = encode_png(image)
    assert png == encode_png(image.copy())
    decoded = np.asarray(Image.open(io.BytesIO(png)))
    assert decoded.shape == (16, 16, 3)
    assert np.array_equal(decoded, (image * 255).round().astype(np.uint8))


def test_device_choice() -> None:
    gpu = choose_device("auto", "auto", cuda_devices=1)
    assert (gpu.device, gpu.dtype, gpu.warnings) == ("cuda", "bfloat16", ())
    cpu = choose_device("auto", "auto", cuda_devices=0)
    assert (cpu.device, cpu.dtype) == ("cpu", "float32") and cpu.warnings
    assert choose_device("cuda:1", "float16", cuda_devices=2).device == "cuda:1"
    with pytest.raises(InputError, match="no CUDA device"):
        choose_device("cuda", "auto", cuda_devices=0)
    with pytest.raises(InputError, match="has 2 CUDA device"):
        choose_device("cuda:2", "auto", cuda_devices=2)


def test_presets_document_settings_and_licenses() -> None:
    for name in ("flux.1-dev", "flux.1-krea-dev", "flux.1-schnell", "sdxl", "sd3.5-medium", "playground-v2.5"):
        preset = PRESETS[name]
        assert preset.license and preset.image_terms and not preset.random_weights
        assert preset.model_id.count("/") == 1 and preset.width == preset.height == 1024
    assert "non-commercial" in PRESETS["flux.1-dev"].license.lower()
    assert PRESETS["builtin:tiny-sd"].random_weights and "random weights" in PRESETS["builtin:tiny-sd"].notes


def test_model_entries(tmp_path: Path) -> None:
    table = defaults()["generator"]
    cfg = GeneratorSettings.from_table(table)
    flux = resolve_spec("FLUX.1-dev", cfg, tmp_path)
    assert (flux.model, flux.source, flux.settings.steps, flux.settings.width) == (
        "black-forest-labs/FLUX.1-dev",
        "hub",
        28,
        1024,
    )
    own = resolve_spec("flux.1-dev", GeneratorSettings.from_table({**table, "preset_settings": False}), tmp_path)
    assert (own.settings.steps, own.settings.width, own.license) == (table["steps"], table["width"], flux.license)
    pinned = resolve_spec("someone/model@abc123", cfg, tmp_path)
    assert (pinned.model, pinned.requested_revision, pinned.preset) == ("someone/model", "abc123", None)
    folder = tmp_path / "models" / "mine"
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    local = resolve_spec("models/mine", cfg, tmp_path)
    assert (local.model, local.source) == ("models/mine", "folder")
    with pytest.raises(InputError, match="builtin:tiny-sd"):
        resolve_spec("builtin:nope", cfg, tmp_path)
    with pytest.raises(InputError, match=r"no model_index\.json"):
        resolve_spec("./empty", cfg, tmp_path)
    with pytest.raises(InputError, match="neither a preset"):
        resolve_spec("not-a-model", cfg, tmp_path)


def test_out_of_memory_is_reported_with_what_to_do() -> None:
    import torch

    from curation.generate.engine import describe_error

    assert "generator.cpu_offload" in describe_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert describe_error(ValueError("bad shape\nmore")) == "ValueError: bad shape"


@pytest.mark.parametrize(
    "change",
    [
        {"revision": "sha256:" + "2" * 64},  # a pinned revision moved, or Hub main moved
        {"dtype": "bfloat16"},
        {"scheduler": "DPMSolverMultistepScheduler"},
        {"pipeline": "StableDiffusionXLPipeline"},
        {"batch_mode": "batched", "batch_size": 4},
        {"call_kwargs": {"negative_prompt": "blurry"}},
    ],
)
def test_anything_that_changes_pixels_renders_both_images_anew(change: dict[str, object]) -> None:
    before, after = plan(), plan(**change)
    assert [j.seed for j in before] == [j.seed for j in after]  # same seeds, same prompts
    assert not {j.render_id for j in before} & {j.render_id for j in after}
    assert {j.render_id for j in plan()} == {j.render_id for j in before}  # the same identity, the same ids
    # Preset name, license and the random-weights flag describe the model, not the pixels.
    same = plan(preset="sdxl", license="openrail++", random_weights=True)
    assert [j.render_id for j in same] == [j.render_id for j in before]
