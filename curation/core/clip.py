"""Loading an open_clip model and encoding images and texts with it: the score stage's scorer and the audit's
CLIP-family reward models.

`[scorer] model` takes an open_clip model name plus a `pretrained` tag (`ViT-L-14` + `openai`), an
`hf-hub:ORG/REPO` id, a `local-dir:PATH` folder (open_clip_config.json + weights, the layout of a Hub repo) or
`builtin:tiny-clip`: a tiny random-weight model widespec builds once into the workspace and then loads through the
same `local-dir:` path. Its scores carry no meaning; it exists so the whole pipeline runs offline and in tests.

When the Hugging Face Hub cannot be reached, Hub models load from the local Hugging Face cache or fail at once
with an error that says what to do, instead of retrying for minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from curation.core import hub
from curation.core.errors import InputError, WidespecError
from curation.core.text_context import context_length, token_counter

Matrix = NDArray[np.float32]

BUILTIN_PREFIX = "builtin:"
LOCAL_DIR_PREFIX = "local-dir:"
HF_HUB_PREFIX = "hf-hub:"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin")

# A CLIP ViT small enough to build in a fraction of a second (~14 MB): 64-pixel images, 32-d embeddings.
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
BUILTIN_MODELS = {"tiny-clip": TINY_CLIP_CONFIG}


def save_local_dir(model: torch.nn.Module, model_cfg: dict[str, Any], folder: Path, image_size: int) -> Path:
    """Write an open_clip model as a `local-dir:` folder (config + safetensors weights), atomically."""
    from safetensors.torch import save_file

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(tmp / WEIGHT_FILES[0]))
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"size": image_size}}
    (tmp / "open_clip_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    try:
        tmp.rename(folder)
    except OSError:  # another process built it first
        for child in tmp.iterdir():
            child.unlink()
        tmp.rmdir()
    return folder


def build_builtin(name: str, models_dir: Path, where: str = "scorer.model") -> Path:
    """The folder of a built-in model, built with seeded random weights on first use."""
    if name not in BUILTIN_MODELS:
        raise InputError(f"{where} = builtin:{name}: unknown built-in model (known: {', '.join(BUILTIN_MODELS)})")
    folder = models_dir / name
    if (folder / "open_clip_config.json").exists():
        return folder
    from open_clip.model import CLIP

    cfg = BUILTIN_MODELS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIP(**cfg)
    return save_local_dir(model, cfg, folder, cfg["vision_cfg"]["image_size"])


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSource:
    """What open_clip is asked to load, and the scorer id recorded with every score."""

    open_clip_name: str
    pretrained: str | None
    scorer_id: str
    extra: dict[str, Any]


def _local_dir_source(folder: Path, label: str, setting: str, where: str) -> ModelSource:
    if not (folder / "open_clip_config.json").is_file():
        raise InputError(f"{where} = {setting}: {folder} has no open_clip_config.json")
    weights = next((folder / f for f in WEIGHT_FILES if (folder / f).is_file()), None)
    if weights is None:
        raise InputError(f"{where} = {setting}: {folder} has no weights ({' or '.join(WEIGHT_FILES)})")
    return ModelSource(f"{LOCAL_DIR_PREFIX}{folder}", None, f"{label}@{file_digest(weights)[:12]}", {})


def resolve_source(
    model: str,
    pretrained: str,
    *,
    root: Path,
    models_dir: Path,
    check_hub: bool = True,
    where: str = "scorer.model",
) -> ModelSource:
    """Turn the [scorer] settings into something open_clip loads, failing fast when the Hub is out of reach;
    `where` names the setting in errors."""
    import open_clip

    if model.startswith(BUILTIN_PREFIX):
        name = model.removeprefix(BUILTIN_PREFIX)
        return _local_dir_source(build_builtin(name, models_dir, where), model, model, where)
    if model.startswith(LOCAL_DIR_PREFIX):
        raw = Path(model.removeprefix(LOCAL_DIR_PREFIX)).expanduser()
        folder = raw if raw.is_absolute() else root / raw
        if not folder.is_dir():
            raise InputError(f"{where} = {model}: no such folder {folder}")
        return _local_dir_source(folder, f"{LOCAL_DIR_PREFIX}{folder.name}", model, where)
    if model.startswith(HF_HUB_PREFIX):
        repo = model.removeprefix(HF_HUB_PREFIX)
        if not check_hub or hub.reachable():
            return ModelSource(model, None, model, {})
        config = hub.cached_file(repo, ["open_clip_config.json"])
        if config is None:
            raise WidespecError(
                f"{where} = {model}: the Hugging Face Hub is unreachable and {repo} is not in the local cache; "
                "download it where the Hub is reachable, or point scorer.model at local-dir:PATH"
            )
        return _local_dir_source(config.parent, model, model, where)
    if model not in open_clip.list_models():
        raise InputError(f"{where} = {model!r}: not an open_clip model name, hf-hub:ID, local-dir:PATH or builtin:NAME")
    if not pretrained:
        raise InputError(
            f"scorer.pretrained is empty for scorer.model = {model!r}: name a pretrained tag "
            f"({', '.join(open_clip.list_pretrained_tags_by_model(model)[:4])}, ...); random weights score nothing"
        )
    tag = open_clip.get_pretrained_cfg(model, pretrained)
    if not tag:
        raise InputError(
            f"scorer.pretrained = {pretrained!r}: no such tag for {model} "
            f"(known: {', '.join(open_clip.list_pretrained_tags_by_model(model))})"
        )
    scorer_id = f"{model}/{pretrained}"
    if not check_hub or hub.reachable():
        return ModelSource(model, pretrained, scorer_id, {})
    parts = str(tag.get("hf_hub", "")).strip("/").split("/")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    names = [filename] if filename else list(WEIGHT_FILES)
    weights = hub.cached_file(repo, names) if repo else None
    if weights is None:
        raise WidespecError(
            f"{where} = {model} with pretrained = {pretrained}: the Hugging Face Hub is unreachable "
            f"(HF_HUB_OFFLINE or no network) and the weights ({repo or tag.get('url')}) are not in the local cache; "
            "download them where the Hub is reachable, or point scorer.model at local-dir:PATH"
        )
    extra = {k: tag[k] for k in ("mean", "std") if k in tag}
    return ModelSource(model, str(weights), scorer_id, {f"image_{k}": v for k, v in extra.items()})


def normalise(x: NDArray[np.floating]) -> Matrix:
    """Rows scaled to unit length (computed in float32; zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"scorer.device = {setting!r}: CUDA is not available on this machine")
    return torch.device(setting)


class ClipEncoder:
    """An open_clip model in eval mode that turns preprocessed images and texts into normalised embeddings."""

    def __init__(
        self,
        scorer_id: str,
        model: torch.nn.Module,
        preprocess: Callable[[Any], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        device: torch.device,
        autocast: bool = True,
    ) -> None:
        self.scorer_id = scorer_id
        self.model = model.to(device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.autocast = autocast and device.type == "cuda"
        self.context = context_length(tokenizer)
        self.count_tokens = token_counter(tokenizer)
        scale = getattr(model, "logit_scale", None)
        self.logit_scale = float(scale.exp().item()) if isinstance(scale, torch.Tensor) else 100.0

    def _precision(self) -> AbstractContextManager[Any]:
        return torch.autocast("cuda", dtype=torch.float16) if self.autocast else nullcontext()

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> Matrix:
        """Preprocessed images (N×3×H×W) → N×D unit vectors."""
        with self._precision():
            features = self.model.encode_image(pixels.to(self.device, non_blocking=True))  # type: ignore[operator]
        return normalise(features.float().cpu().numpy())

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> Matrix:
        """Texts → unit vectors, in batches."""
        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
            with self._precision():
                chunks.append(self.model.encode_text(tokens).float().cpu().numpy())  # type: ignore[operator]
        return normalise(np.concatenate(chunks)) if chunks else np.zeros((0, 0), np.float32)


def load_encoder(source: ModelSource, device: torch.device, autocast: bool = True) -> ClipEncoder:
    """Load the model through open_clip (the same call for local folders and Hub weights)."""
    import open_clip

    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            source.open_clip_name, pretrained=source.pretrained, device=device, **source.extra
        )
        tokenizer = open_clip.get_tokenizer(source.open_clip_name)
    except Exception as exc:
        raise WidespecError(f"scorer {source.scorer_id}: open_clip could not load it: {exc}") from exc
    return ClipEncoder(source.scorer_id, model, preprocess, tokenizer, device, autocast)
