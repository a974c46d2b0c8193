"""Reward model loaders on tiny random-weight models of each family, through the same code as real weights."""

from __future__ import annotations

import io
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPModel

from curation.audit.loading import collate
from curation.audit.models import LoadContext, RewardModel, resolve
from curation.audit.population import AuditUnit, ImageRef
from curation.audit.specs import parse_spec, resolve_names
from curation.audit.stage import four_scores
from curation.core.errors import WidespecError
from tests.dataset_fixtures import noise_png

pytestmark = pytest.mark.slow
FAMILIES = ("tiny-clip", "tiny-hps", "tiny-aesthetic", "tiny-pickscore", "tiny-blip")


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> LoadContext:
    root = tmp_path_factory.mktemp("audit-models")
    return LoadContext(root, root / "models", torch.device("cpu"))


def load(name: str, context: LoadContext) -> RewardModel:
    (spec,) = resolve_names(name, {})
    return resolve(spec, context).load(context)


def images(n: int) -> list[Image.Image]:
    return [Image.open(io.BytesIO(noise_png(seed, 48))).convert("RGB") for seed in range(n)]


def unit(anti: str, base: str) -> AuditUnit:
    ref = ImageRef("unused.png")
    return AuditUnit("0" * 16, anti, base, ref, ref, "1" * 16, "g", ("blurry",), "mild", (), ())


@pytest.mark.parametrize("name", FAMILIES)
def test_each_image_and_text_is_encoded_once_and_the_grid_matches_direct_scoring(
    name: str, context: LoadContext
) -> None:
    model = load(name, context)
    anti_a, anti_b, base = images(3)
    # Two variants of one base prompt: three distinct images and three distinct texts for eight scores.
    items = [(0, (("a", model.preprocess(anti_a), None), ("base", model.preprocess(base), None)))]
    items += [(1, (("b", model.preprocess(anti_b), None), ("base", model.preprocess(base), None)))]
    batch = collate(model.preprocess, items)
    units = [unit("a street, heavily blurred", "a street"), unit("a street, noisy and grainy", "a street")]
    seen: dict[str, list[int]] = {"images": [], "texts": []}
    encode_images, encode_texts = model.encode_images, model.encode_texts

    def counting_images(pixels: torch.Tensor) -> object:
        seen["images"].append(len(pixels))
        return encode_images(pixels)

    def counting_texts(texts: list[str]) -> object:
        seen["texts"].append(len(texts))
        return encode_texts(texts)

    model.encode_images, model.encode_texts = counting_images, counting_texts  # type: ignore[method-assign]
    grid = four_scores(model, batch, units, [0, 1])
    assert seen["images"] == [3]
    assert seen["texts"] == ([3] if model.needs_prompt else [])
    assert np.isfinite(grid).all() and grid.shape == (2, 4)

    model.encode_images, model.encode_texts = encode_images, encode_texts  # type: ignore[method-assign]
    pixels = model.preprocess.batch([model.preprocess(i) for i in (anti_a, base, anti_a, base)])
    direct = model.score(pixels, [units[0].anti_prompt, units[0].anti_prompt, "a street", "a street"])
    assert grid[0] == pytest.approx(direct, abs=1e-5)
    if model.needs_prompt:
        assert len(set(np.round(grid.reshape(-1), 6))) > 2  # the scores depend on the image and the prompt
        (long,) = model.count_tokens([" ".join(["colour"] * 200)])
        assert model.context is not None and long is not None and long > model.context
    else:
        assert grid[0, 0] == grid[0, 2] and grid[0, 1] == grid[0, 3]


def test_the_aesthetic_predictor_is_the_laion_mlp_on_normalised_embeddings(context: LoadContext) -> None:
    # The predictor's layout: Linear and Dropout modules in one Sequential named `layers`, no activations;
    # eleven modules, so the layers must be taken in numeric order (10 after 9, not after 1).
    torch.manual_seed(5)
    sizes = [32, 24, 20, 16, 12, 8, 1]
    modules: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        modules += [torch.nn.Linear(a, b)] + ([torch.nn.Dropout(0.2)] if i < 5 else [])
    mlp = torch.nn.Sequential(*modules).eval()
    assert len(mlp) == 11
    torch.save({f"layers.{k}": v for k, v in mlp.state_dict().items()}, context.root / "mlp.pth")
    spec = parse_spec("mine", "aesthetic:builtin:tiny-clip#mlp.pth", "test")
    model = resolve(spec, context).load(context)
    pixels = model.preprocess.batch([model.preprocess(i) for i in images(4)])
    clip = load("tiny-clip", context)
    embeddings = torch.from_numpy(clip.encode_images(pixels))  # unit vectors
    with torch.no_grad():
        expected = mlp(embeddings)[:, 0].numpy()
    assert model.score(pixels, ["ignored"] * 4) == pytest.approx(expected, abs=1e-5)

    torch.save({"layers.0.weight": torch.zeros(1, 64), "layers.0.bias": torch.zeros(1)}, context.root / "wide.pth")
    with pytest.raises(WidespecError, match="reads 64 features and gives 1; the image encoder gives 32"):
        resolve(parse_spec("w", "aesthetic:builtin:tiny-clip#wide.pth", "t"), context).load(context)


def test_an_hps_checkpoint_replaces_the_weights_and_a_wrong_one_is_refused(context: LoadContext) -> None:
    hps, clip = load("tiny-hps", context), load("tiny-clip", context)
    pixels = hps.preprocess.batch([hps.preprocess(i) for i in images(3)])
    prompts = ["a fox", "a dog", "a cat"]
    assert not np.allclose(hps.score(pixels, prompts), clip.score(pixels, prompts))
    torch.save({"state_dict": {"visual.proj": torch.zeros(2, 2)}}, context.root / "other.pt")
    with pytest.raises(WidespecError, match="the checkpoint does not fit"):
        resolve(parse_spec("h", "hps:builtin:tiny-clip#other.pt", "t"), context).load(context)


def test_hub_models_fail_at_once_offline_saying_what_to_do(
    context: LoadContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, message in (
        ("clip-l", "the Hugging Face Hub is unreachable"),
        ("hpsv2.1", "xswu/HPSv2/HPS_v2.1_compressed.pt is not in the local cache"),
        ("pickscore", "could not be loaded from the local Hugging Face cache"),
    ):
        (spec,) = resolve_names(name, {})
        with pytest.raises(WidespecError, match=message) as caught:
            resolve(spec, context)
        assert "\n" not in str(caught.value)


def test_the_model_id_changes_with_the_weights(context: LoadContext) -> None:
    (spec,) = resolve_names("tiny-pickscore", {})
    assert resolve(spec, context).id == resolve(spec, context).id
    folder = Path(resolve(spec, context).source.path)
    copy = context.root / "copied-pickscore"
    shutil.copytree(folder, copy)
    same = resolve(parse_spec("c", f"hf-clip:{copy}", "t"), context).id
    assert same.endswith(resolve(spec, context).id.rsplit("@", 1)[1])
    model = CLIPModel.from_pretrained(copy)
    with torch.no_grad():
        model.logit_scale.add_(1.0)
    model.save_pretrained(copy)
    assert resolve(parse_spec("c", f"hf-clip:{copy}", "t"), context).id != same
