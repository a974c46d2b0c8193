"""Where a reward model's files come from: checkpoints (`hf:ORG/REPO/FILE`, a path, `builtin:NAME`) and
transformers folders (a Hub repo id, a local folder, `builtin:NAME`), each with the revision that goes into the
model's id. Offline, Hub files load from the local Hugging Face cache or fail at once saying what to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curation.audit import tiny
from curation.core import hub
from curation.core.clip import file_digest
from curation.core.errors import InputError, WidespecError
from curation.core.ids import content_hash

HF_PREFIX = "hf:"
BUILTIN_PREFIX = "builtin:"
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class Located:
    """A file or folder on disk and the label of its revision (a digest or a Hub commit)."""

    path: Path
    revision: str


def checkpoint(spec: str, *, root: Path, models_dir: Path, where: str) -> Located:
    """A checkpoint file, with the first 12 hex digits of its sha256 as revision."""
    if spec.startswith(BUILTIN_PREFIX):
        path = tiny.builtin_file(spec.removeprefix(BUILTIN_PREFIX), models_dir, where)
    elif spec.startswith(HF_PREFIX):
        parts = spec.removeprefix(HF_PREFIX).strip("/").split("/")
        if len(parts) < 3:
            raise InputError(f"{where}: checkpoint {spec!r}: expected hf:ORG/REPO/FILE")
        path = _hub_file("/".join(parts[:2]), "/".join(parts[2:]), where)
    else:
        raw = Path(spec).expanduser()
        path = raw if raw.is_absolute() else root / raw
        if not path.is_file():
            raise InputError(f"{where}: checkpoint {spec!r}: no such file {path}")
    return Located(path, file_digest(path)[:12])


def _hub_file(repo: str, filename: str, where: str) -> Path:
    if hub.reachable():
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename))
    cached = hub.cached_file(repo, [filename])
    if cached is None:
        raise WidespecError(
            f"{where}: the Hugging Face Hub is unreachable and {repo}/{filename} is not in the local cache; "
            "download it where the Hub is reachable, or give a local path"
        )
    return cached


def transformers_folder(spec: str, *, root: Path, models_dir: Path, where: str, weights: bool = True) -> Located:
    """A folder `from_pretrained` loads: a built-in, a local folder (revision: its weights' digest, or its
    files' for a processor) or a Hub repo (revision: the commit of its snapshot). `weights=False`: a processor
    only (configs, tokenizer and vocabulary files; no weights downloaded)."""
    if spec.startswith(BUILTIN_PREFIX):
        return _local_folder(tiny.builtin_folder(spec.removeprefix(BUILTIN_PREFIX), models_dir, where), where)
    raw = Path(spec).expanduser()
    local = raw if raw.is_absolute() else root / raw
    if local.is_dir():
        return _local_folder(local, where) if weights else _processor_folder(local)
    if spec.count("/") != 1 or spec.startswith((".", "/")):
        raise InputError(f"{where}: {spec!r} is neither a folder nor a Hub repo id ORG/NAME")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.txt", "*.model", *(["*.safetensors"] if weights else [])]
    online = hub.reachable()
    try:
        folder = Path(snapshot_download(spec, allow_patterns=patterns, local_files_only=not online))
    except Exception as exc:
        raise WidespecError(
            f"{where}: {spec} could not be loaded {'from the Hub' if online else 'from the local Hugging Face cache (the Hub is unreachable)'}: "
            f"{type(exc).__name__}; download it where the Hub is reachable, or give a local folder"
        ) from exc
    return Located(folder, folder.name[:12])


def _local_folder(folder: Path, where: str) -> Located:
    weights = next((folder / name for name in WEIGHT_NAMES if (folder / name).is_file()), None)
    if weights is None:
        raise InputError(f"{where}: {folder} has no weights ({' or '.join(WEIGHT_NAMES)})")
    return Located(folder, file_digest(weights)[:12])


def _processor_folder(folder: Path) -> Located:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".txt", ".model"))
    digest = content_hash([f"{p.name}:{file_digest(p)}" for p in files])
    return Located(folder, digest[:12])
