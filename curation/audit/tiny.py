"""Tiny random-weight reward models of each family, built offline into the workspace on first use and then
loaded through the same loaders as real weights. Their scores mean nothing: they exercise the code paths.

- `tiny-hps`: an HPS-style checkpoint (`{"state_dict": ...}`) for the open_clip `builtin:tiny-clip` model;
- `tiny-aesthetic`: the LAION aesthetic predictor's layout (`layers.N.weight`/`bias` linear layers, no
  activations) on tiny-clip's 32-d image embeddings;
- `tiny-hf-clip`: a transformers `CLIPModel` with its processor (PickScore's layout);
- `tiny-blip`: a transformers `BlipForImageTextRetrieval` with its processor and a character WordPiece vocabulary.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path

from curation.core.clip import TINY_CLIP_CONFIG
from curation.core.errors import InputError
from curation.core.files import build_once
from curation.core.tokenizers import CLIP_CONTEXT, save_clip_tokenizer

BUILD_SEED = 1
CHECKPOINT = "checkpoint.pt"
TINY_IMAGE = 32


def quiet_transformers() -> None:
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _build_hps(folder: Path) -> None:
    import torch
    from open_clip.model import CLIP

    torch.save({"state_dict": CLIP(**TINY_CLIP_CONFIG).state_dict()}, folder / CHECKPOINT)


def _build_aesthetic(folder: Path) -> None:
    import torch

    dim = TINY_CLIP_CONFIG["embed_dim"]
    layers = torch.nn.Sequential(torch.nn.Linear(dim, 16), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))
    torch.save({f"layers.{k}": v for k, v in layers.state_dict().items()}, folder / CHECKPOINT)


def _small(**extra: float) -> dict[str, float]:
    # Wide initial weights: at transformers' default scale a tiny random model gives every input the same score.
    return {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "initializer_range": 0.5,
        **extra,
    }


def _build_hf_clip(folder: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    quiet_transformers()
    config = CLIPConfig(
        text_config=_small(vocab_size=49408, max_position_embeddings=CLIP_CONTEXT),
        vision_config=_small(image_size=TINY_IMAGE, patch_size=8),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    save_clip_tokenizer(folder / "tokenizer")
    images = CLIPImageProcessor(size={"shortest_edge": TINY_IMAGE}, crop_size=TINY_IMAGE)
    CLIPProcessor(images, CLIPTokenizer.from_pretrained(folder / "tokenizer")).save_pretrained(folder)


def _build_blip(folder: Path) -> None:
    from transformers import BertTokenizer, BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor, BlipProcessor

    quiet_transformers()
    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    tokenizer = BertTokenizer(vocab={token: index for index, token in enumerate(vocab)}, model_max_length=64)
    config = BlipConfig(
        text_config=_small(
            vocab_size=len(vocab),
            max_position_embeddings=64,
            encoder_hidden_size=32,
            pad_token_id=0,
            bos_token_id=2,
            sep_token_id=3,
        ),
        vision_config=_small(image_size=TINY_IMAGE, patch_size=8),
        projection_dim=16,
        initializer_range=0.5,
    )
    BlipForImageTextRetrieval(config).save_pretrained(folder)
    images = BlipImageProcessor(size={"height": TINY_IMAGE, "width": TINY_IMAGE})
    BlipProcessor(images, tokenizer).save_pretrained(folder)


FILES: dict[str, Callable[[Path], None]] = {"tiny-hps": _build_hps, "tiny-aesthetic": _build_aesthetic}
FOLDERS: dict[str, Callable[[Path], None]] = {"tiny-hf-clip": _build_hf_clip, "tiny-blip": _build_blip}


def builtin_file(name: str, models_dir: Path, where: str) -> Path:
    """The checkpoint of built-in `name`, built on first use."""
    if name not in FILES:
        raise InputError(f"{where}: unknown built-in checkpoint {name!r} (known: {', '.join(FILES)})")
    return build_once(models_dir / name, CHECKPOINT, FILES[name], seed=BUILD_SEED) / CHECKPOINT


def builtin_folder(name: str, models_dir: Path, where: str) -> Path:
    """The transformers folder of built-in `name`, built on first use."""
    if name not in FOLDERS:
        raise InputError(f"{where}: unknown built-in model {name!r} (known: {', '.join(FOLDERS)})")
    return build_once(models_dir / name, "config.json", FOLDERS[name], seed=BUILD_SEED)
