"""Tokenizers widespec writes itself for its tiny random-weight models, so nothing is downloaded: CLIP's BPE
tokenizer is rebuilt from the vocabulary that ships inside open_clip."""

from __future__ import annotations

import gzip
import json
import tempfile
from functools import cache
from pathlib import Path

CLIP_CONTEXT = 77


@cache
def clip_bpe() -> tuple[dict[str, int], list[str]]:
    """CLIP's byte-level BPE vocabulary and merges, rebuilt from the file bundled with open_clip."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe(), "rt", encoding="utf-8") as handle:
        merges = handle.read().split("\n")[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, merges


def save_clip_tokenizer(folder: Path) -> None:
    """Write a CLIPTokenizer (vocab.json, merges.txt) into `folder`."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_bpe()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        tokenizer = CLIPTokenizer.from_pretrained(tmp, model_max_length=CLIP_CONTEXT)
    tokenizer.save_pretrained(folder)
