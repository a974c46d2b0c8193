"""Tiny random-weight pipelines that widespec builds locally: the offline default and the tests' generators.

`builtin:tiny-sd` (Stable Diffusion layout) and `builtin:tiny-flux` (Flux layout) are built once into a folder
with `save_pretrained` and then loaded like any other model, through `DiffusionPipeline.from_pretrained(folder)`.
Their weights are random: the images are structured noise, useful to exercise the pipeline end to end, never
research data. Their tokenizers are written by curation.core.tokenizers, so nothing is
downloaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curation.core.files import build_once
from curation.core.tokenizers import CLIP_CONTEXT, clip_bpe, save_clip_tokenizer

TINY_MODELS = ("tiny-sd", "tiny-flux")
# Weights are drawn from this seed, so a rebuild gives the same model.
BUILD_SEED = 0


def save_t5_tokenizer(folder: Path) -> None:
    """Write a small unigram T5 tokenizer (printable ASCII pieces) into `folder`."""
    from transformers import T5Tokenizer

    pieces = [chr(c) for c in range(33, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("▁" + p, -1.0) for p in pieces] + [(p, -2.0) for p in pieces] + [("▁", -3.0)]
    T5Tokenizer(vocab=vocab, extra_ids=0).save_pretrained(folder)


def _clip_text_config(**overrides: Any) -> Any:
    from transformers import CLIPTextConfig

    vocab, _ = clip_bpe()
    settings: dict[str, Any] = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": CLIP_CONTEXT,
        "bos_token_id": vocab["<|startoftext|>"],
        "eos_token_id": vocab["<|endoftext|>"],
        "pad_token_id": vocab["<|endoftext|>"],
        "projection_dim": 32,
    }
    settings.update(overrides)
    return CLIPTextConfig(**settings)


def _tiny_vae(latent_channels: int, **extra: Any) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(**{**TINY_VAE, "latent_channels": latent_channels, **extra})


TINY_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "latent_channels": 4,
    "sample_size": 64,
}
TINY_FLUX: dict[str, dict[str, Any]] = {
    "transformer": {
        "patch_size": 1,
        "in_channels": 16,
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "joint_attention_dim": 32,
        "pooled_projection_dim": 32,
        "guidance_embeds": True,
        "axes_dims_rope": (4, 4, 8),
    },
    "vae": {**TINY_VAE, "shift_factor": 0.0609, "scaling_factor": 1.5035},
    "clip": {},
    "t5": {"vocab_size": 200, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4},
    "scheduler": {"shift": 3.0, "use_dynamic_shifting": False},
}


def build_tiny_sd(folder: Path) -> None:
    """A Stable Diffusion pipeline with a 2-level UNet, a 2-layer CLIP text encoder and a tiny VAE."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    with tempfile.TemporaryDirectory() as tmp:
        save_clip_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
    pipeline: Any = StableDiffusionPipeline(
        vae=_tiny_vae(4),
        text_encoder=CLIPTextModel(_clip_text_config()),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)


def flux_pipeline(configs: dict[str, dict[str, Any]]) -> Any:
    """A FluxPipeline with random weights from component configs (TINY_FLUX, or full-size ones)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5Tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        save_clip_tokenizer(Path(tmp) / "clip")
        save_t5_tokenizer(Path(tmp) / "t5")
        clip_tokenizer = CLIPTokenizer.from_pretrained(Path(tmp) / "clip")
        t5_tokenizer = T5Tokenizer.from_pretrained(Path(tmp) / "t5")
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**configs["scheduler"]),
        vae=AutoencoderKL(**configs["vae"]),
        text_encoder=CLIPTextModel(_clip_text_config(**configs["clip"])),
        tokenizer=clip_tokenizer,
        text_encoder_2=T5EncoderModel(T5Config(**configs["t5"])),
        tokenizer_2=t5_tokenizer,
        transformer=FluxTransformer2DModel(**configs["transformer"]),
    )


def build_tiny_flux(folder: Path) -> None:
    """A Flux pipeline with one double and one single transformer block, tiny CLIP and T5 encoders."""
    flux_pipeline(TINY_FLUX).save_pretrained(folder)


BUILDERS: dict[str, Callable[[Path], None]] = {"tiny-sd": build_tiny_sd, "tiny-flux": build_tiny_flux}


def ensure_tiny_model(name: str, models_dir: Path) -> Path:
    """The folder of built-in model `name` under `models_dir`, built on first use.

    The model is built into a temporary folder and renamed into place, so concurrent processes (shards) and a
    kill at any moment never leave a half-built model where the loader looks.
    """
    if name not in BUILDERS:
        raise KeyError(f"unknown built-in model {name!r}; known: {', '.join(TINY_MODELS)}")
    return build_once(models_dir / name, "model_index.json", BUILDERS[name], seed=BUILD_SEED)
