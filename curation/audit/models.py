"""Reward models behind one small interface, each loaded through its own library and weights layout.

A model encodes each distinct image and each distinct text once (`encode_images`, `encode_texts`) and scores any
(image, text) combinations of them (`score_grid`); the four scores of a pair therefore cost two image and two
text encodings. Kinds (see curation.audit.specs):

- `clip`: open_clip, score = cos(image, text);
- `hps`: an open_clip architecture with an HPS checkpoint (HPSv2/HPSv2.1: ViT-H-14), score = cos(image, text);
- `aesthetic`: the LAION aesthetic predictor, its linear layers applied in order (no activations) to the
  normalised open_clip image embedding; it reads no prompt;
- `hf-clip`: a transformers `CLIPModel` (PickScore), score = logit_scale · cos(image, text);
- `blip-itm`: transformers `BlipForImageTextRetrieval`, score = P(match) of its image-text matching head;
- `imagereward`, `hpsv3`: their packages cannot share widespec's environment; loading one says why.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from curation.audit import weights
from curation.audit.specs import ModelSpec
from curation.audit.tiny import quiet_transformers
from curation.core.clip import ClipEncoder, ModelSource, load_encoder, normalise, resolve_source
from curation.core.errors import InputError, WidespecError
from curation.core.preprocess import BatchedPreprocess, batched

Scores = NDArray[np.float64]
TEXT_BATCH = 64
# Why the packages of two of the paper's reward models cannot be installed next to widespec's own.
NOT_INSTALLABLE = {
    "imagereward": "image-reward 1.5 pins timm==0.6.13 and open_clip_torch 3.3 needs timm>=1.0.17",
    "hpsv3": "hpsv3 1.0 pins transformers==4.45.2 and widespec needs transformers>=4.46",
}


class RewardModel(ABC):
    """Scores images under prompts. `id` carries the weights' revision; `context` is the text context in tokens
    (None: unlimited or no prompt); `preprocess` turns a PIL image into model input (run in loader workers)."""

    id: str
    needs_prompt: bool = True
    context: int | None = None
    preprocess: BatchedPreprocess

    def count_tokens(self, texts: Sequence[str]) -> list[int | None]:
        """Each text's token count before any cut (None where the tokenizer gives none)."""
        return [None] * len(texts)

    @abstractmethod
    def encode_images(self, pixels: torch.Tensor) -> Any:
        """Preprocessed images (N×3×H×W) → what `score_grid` reads of each."""

    def encode_texts(self, texts: Sequence[str]) -> Any:
        """Texts → what `score_grid` reads of each (None for a model that reads no prompt)."""
        return None

    @abstractmethod
    def score_grid(
        self, images: Any, texts: Any, image_rows: NDArray[np.int64], text_rows: NDArray[np.int64]
    ) -> Scores:
        """The score of image `image_rows[k]` under text `text_rows[k]`, for every k."""

    def score(self, pixels: torch.Tensor, prompts: Sequence[str]) -> Scores:
        """The score of image i under prompt i."""
        rows = np.arange(len(prompts), dtype=np.int64)
        texts = self.encode_texts(prompts) if self.needs_prompt else None
        return self.score_grid(self.encode_images(pixels), texts, rows, rows)


class OpenClipReward(RewardModel):
    """`clip` and `hps`: cosine between normalised open_clip embeddings."""

    def __init__(self, model_id: str, encoder: ClipEncoder) -> None:
        self.id, self.encoder = model_id, encoder
        self.context = encoder.context
        self.preprocess = batched(encoder.preprocess)

    def count_tokens(self, texts: Sequence[str]) -> list[int | None]:
        return list(self.encoder.count_tokens(texts)) if self.encoder.count_tokens else [None] * len(texts)

    def encode_images(self, pixels: torch.Tensor) -> Any:
        return self.encoder.encode_images(pixels)

    def encode_texts(self, texts: Sequence[str]) -> Any:
        return self.encoder.encode_texts(texts, TEXT_BATCH)

    def score_grid(
        self, images: Any, texts: Any, image_rows: NDArray[np.int64], text_rows: NDArray[np.int64]
    ) -> Scores:
        return np.einsum("kd,kd->k", images[image_rows], texts[text_rows]).astype(np.float64)


class AestheticReward(RewardModel):
    """The LAION aesthetic predictor: linear layers on the normalised image embedding; no prompt."""

    needs_prompt = False

    def __init__(self, model_id: str, encoder: ClipEncoder, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.id, self.encoder, self.layers = model_id, encoder, layers
        self.preprocess = batched(encoder.preprocess)

    def encode_images(self, pixels: torch.Tensor) -> Any:
        x = torch.from_numpy(self.encoder.encode_images(pixels)).double()
        for weight, bias in self.layers:
            x = x @ weight.double().T + bias.double()
        return x[:, 0].numpy()

    def score_grid(
        self, images: Any, texts: Any, image_rows: NDArray[np.int64], text_rows: NDArray[np.int64]
    ) -> Scores:
        return np.asarray(images, dtype=np.float64)[image_rows]


class HfTokenized(RewardModel):
    """A transformers model whose tokenizer counts tokens and cuts texts at the model's context."""

    tokenizer: Any
    device: torch.device

    def count_tokens(self, texts: Sequence[str]) -> list[int | None]:
        return [len(ids) for ids in self.tokenizer(list(texts), truncation=False).input_ids]

    def tokens(self, texts: Sequence[str]) -> Any:
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.context, return_tensors="pt"
        ).to(self.device)


def _features(output: Any) -> torch.Tensor:
    """transformers ≥ 5 returns the projected features as `pooler_output`; earlier versions the tensor itself."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class HfClipReward(HfTokenized):
    """`hf-clip` (PickScore): logit_scale · cosine of the projected CLIPModel features."""

    def __init__(self, model_id: str, model: Any, processor: Any, device: torch.device) -> None:
        self.id, self.model, self.device = model_id, model.to(device).eval(), device
        self.tokenizer = processor.tokenizer
        self.context = int(model.config.text_config.max_position_embeddings)
        self.scale = float(model.logit_scale.exp().item())
        image_processor = processor.image_processor
        self.preprocess = BatchedPreprocess(
            lambda image: image_processor(image, return_tensors="pt")["pixel_values"][0]
        )

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> Any:
        return normalise(
            _features(self.model.get_image_features(pixel_values=pixels.to(self.device))).float().cpu().numpy()
        )

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> Any:
        chunks = [
            _features(self.model.get_text_features(**self.tokens(texts[i : i + TEXT_BATCH]))).float().cpu().numpy()
            for i in range(0, len(texts), TEXT_BATCH)
        ]
        return normalise(np.concatenate(chunks))

    def score_grid(
        self, images: Any, texts: Any, image_rows: NDArray[np.int64], text_rows: NDArray[np.int64]
    ) -> Scores:
        return self.scale * np.einsum("kd,kd->k", images[image_rows], texts[text_rows]).astype(np.float64)


class BlipItmReward(HfTokenized):
    """`blip-itm`: the vision tower runs once per image; the matching head reads each (image, text) combination."""

    def __init__(self, model_id: str, model: Any, processor: Any, device: torch.device) -> None:
        self.id, self.model, self.device = model_id, model.to(device).eval(), device
        self.tokenizer = processor.tokenizer
        self.context = min(int(self.tokenizer.model_max_length), int(model.config.text_config.max_position_embeddings))
        image_processor = processor.image_processor
        self.preprocess = BatchedPreprocess(
            lambda image: image_processor(image, return_tensors="pt")["pixel_values"][0]
        )

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> Any:
        return self.model.vision_model(pixel_values=pixels.to(self.device)).last_hidden_state

    def encode_texts(self, texts: Sequence[str]) -> Any:
        return self.tokens(texts)

    @torch.inference_mode()
    def score_grid(
        self, images: Any, texts: Any, image_rows: NDArray[np.int64], text_rows: NDArray[np.int64]
    ) -> Scores:
        scores = []
        for start in range(0, len(image_rows), TEXT_BATCH):
            i = torch.as_tensor(image_rows[start : start + TEXT_BATCH], device=self.device)
            t = torch.as_tensor(text_rows[start : start + TEXT_BATCH], device=self.device)
            embeds = images[i]
            hidden = self.model.text_encoder(
                input_ids=texts["input_ids"][t],
                attention_mask=texts["attention_mask"][t],
                encoder_hidden_states=embeds,
                encoder_attention_mask=torch.ones(embeds.shape[:-1], dtype=torch.long, device=self.device),
            ).last_hidden_state
            logits = self.model.itm_head(hidden[:, 0, :]).float()
            scores.append(torch.softmax(logits, dim=-1)[:, 1].cpu().numpy())
        return np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)


# -- loading ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadContext:
    root: Path
    models_dir: Path
    device: torch.device


@dataclass(frozen=True)
class Resolved:
    """A spec whose files are located, with the id its scores carry; `load` needs nothing else."""

    spec: ModelSpec
    id: str
    source: Any
    extra: weights.Located | None

    def load(self, context: LoadContext) -> RewardModel:
        return _LOADERS[self.spec.kind](self, context)


def _where(spec: ModelSpec) -> str:
    return f"reward model {spec.name}"


def _open_clip_source(spec: ModelSpec, context: LoadContext, *, weights_needed: bool) -> ModelSource:
    """`NAME/TAG` (open_clip's pretrained weights; with a checkpoint, only the architecture), `hf-hub:`,
    `local-dir:` or `builtin:`."""
    where = _where(spec)
    if spec.source.startswith(("builtin:", "local-dir:", "hf-hub:")):
        return resolve_source(spec.source, "", root=context.root, models_dir=context.models_dir, where=where)
    name, _, tag = spec.source.partition("/")
    if not weights_needed:
        return ModelSource(name, None, name, {})
    if not tag:
        raise InputError(f"{where}: {spec.text!r}: name open_clip's pretrained tag as {name}/TAG (e.g. {name}/openai)")
    return resolve_source(name, tag, root=context.root, models_dir=context.models_dir, where=where)


def resolve(spec: ModelSpec, context: LoadContext) -> Resolved:
    """Locate a model's files (building a built-in, reading the Hub cache offline) without loading it."""
    where = _where(spec)
    if spec.kind in NOT_INSTALLABLE:
        raise WidespecError(
            f"{where}: {spec.kind} cannot be installed in widespec's environment ({NOT_INSTALLABLE[spec.kind]}); "
            "score it in an environment of its own"
        )
    extra = None
    if spec.kind in ("hps", "aesthetic"):
        assert spec.extra is not None
        extra = weights.checkpoint(spec.extra, root=context.root, models_dir=context.models_dir, where=where)
    if spec.kind in ("clip", "hps", "aesthetic"):
        source = _open_clip_source(spec, context, weights_needed=spec.kind != "hps")
        suffix = f"#{Path(spec.extra or '').name}@{extra.revision}" if extra else ""
        return Resolved(spec, f"{spec.kind}:{source.scorer_id}{suffix}", source, extra)
    folder = weights.transformers_folder(spec.source, root=context.root, models_dir=context.models_dir, where=where)
    model_id = f"{spec.kind}:{spec.source}@{folder.revision}"
    if spec.extra:
        extra = weights.transformers_folder(
            spec.extra, root=context.root, models_dir=context.models_dir, where=where, weights=False
        )
        model_id += f"#{spec.extra}@{extra.revision}"  # the processor changes the scores too
    return Resolved(spec, model_id, folder, extra)


def _load_clip(resolved: Resolved, context: LoadContext) -> RewardModel:
    return OpenClipReward(resolved.id, load_encoder(resolved.source, context.device))


def _state_dict(path: Path, where: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise WidespecError(
            f"{where}: {path} is not a readable torch checkpoint: {type(exc).__name__}: {first}"
        ) from exc
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise WidespecError(f"{where}: {path} holds no state dict")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _load_hps(resolved: Resolved, context: LoadContext) -> RewardModel:
    encoder = load_encoder(resolved.source, context.device)
    assert resolved.extra is not None
    try:
        encoder.model.load_state_dict(_state_dict(resolved.extra.path, _where(resolved.spec)))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WidespecError(
            f"{_where(resolved.spec)}: the checkpoint does not fit {resolved.source.open_clip_name}: {first}"
        ) from exc
    encoder.model.to(context.device).eval()
    return OpenClipReward(resolved.id, encoder)


LAYER_KEY = re.compile(r"^layers\.(\d+)\.(weight|bias)$")


def mlp_layers(state: dict[str, torch.Tensor], where: str, dim: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The aesthetic MLP's linear layers in order; the first must read `dim` features and the last give one."""
    found: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = LAYER_KEY.match(key)
        if not match:
            raise WidespecError(
                f"{where}: unexpected key {key!r} in the aesthetic checkpoint (expected layers.N.weight/bias)"
            )
        found.setdefault(int(match.group(1)), {})[match.group(2)] = value.float()
    layers = [(found[i]["weight"], found[i]["bias"]) for i in sorted(found) if {"weight", "bias"} <= set(found[i])]
    if not layers:
        raise WidespecError(f"{where}: the aesthetic checkpoint holds no linear layers")
    if layers[0][0].shape[1] != dim or layers[-1][0].shape[0] != 1:
        raise WidespecError(
            f"{where}: the aesthetic MLP reads {layers[0][0].shape[1]} features and gives {layers[-1][0].shape[0]}; "
            f"the image encoder gives {dim} and a score is one"
        )
    return layers


def _load_aesthetic(resolved: Resolved, context: LoadContext) -> RewardModel:
    encoder = load_encoder(resolved.source, context.device)
    assert resolved.extra is not None
    probe = encoder.encode_images(torch.zeros(1, 3, *_image_size(encoder)))
    where = _where(resolved.spec)
    layers = mlp_layers(_state_dict(resolved.extra.path, where), where, probe.shape[1])
    return AestheticReward(resolved.id, encoder, layers)


def _image_size(encoder: ClipEncoder) -> tuple[int, int]:
    size = getattr(encoder.model.visual, "image_size", 224)
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _load_hf(model_class: str, reward: type[HfTokenized]) -> Any:
    def load(resolved: Resolved, context: LoadContext) -> RewardModel:
        import transformers

        quiet_transformers()
        folder = resolved.source.path
        processor_folder = resolved.extra.path if resolved.extra else folder
        try:
            model = getattr(transformers, model_class).from_pretrained(folder)
            processor = transformers.AutoProcessor.from_pretrained(processor_folder)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WidespecError(f"{_where(resolved.spec)}: transformers could not load {folder}: {first}") from exc
        return reward(resolved.id, model, processor, context.device)  # type: ignore[call-arg]

    return load


_LOADERS: dict[str, Any] = {
    "clip": _load_clip,
    "hps": _load_hps,
    "aesthetic": _load_aesthetic,
    "hf-clip": _load_hf("CLIPModel", HfClipReward),
    "blip-itm": _load_hf("BlipForImageTextRetrieval", BlipItmReward),
}
