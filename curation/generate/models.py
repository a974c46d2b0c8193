"""Generator models: what a `generator.models` entry names, its settings, its revision, and loading it.

Every model, built-in or not, is loaded through `DiffusionPipeline.from_pretrained(folder)`: a Hub id is first
resolved to its cached snapshot folder (whose name is the commit), a local folder is used as it is, and a
built-in tiny model is built into `generator.models_dir` on first use.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.core.errors import InputError, WidespecError
from curation.core.model_licenses import CARD, known_license, model_license
from curation.core.settings import GeneratorSettings
from curation.core.store import Store
from curation.generate.presets import BUILTIN_PREFIX, PRESETS, Preset, find_preset
from curation.generate.tiny import TINY_MODELS, ensure_tiny_model

INDEX = "model_index.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderSettings:
    """What both images of a pair share, plus pipeline-specific call arguments."""

    steps: int
    guidance: float
    width: int
    height: int
    call_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def shared(self) -> tuple[int, float, int, int]:
        """steps, guidance, width, height: the settings every render record carries."""
        return (self.steps, self.guidance, self.width, self.height)


@dataclass(frozen=True)
class ModelSpec:
    """One `generator.models` entry, resolved without touching the network or loading weights."""

    spec: str
    model: str  # recorded as generator.model: Hub id, builtin:NAME or a folder path
    source: str  # hub | folder | builtin
    requested_revision: str | None
    preset: Preset | None
    settings: RenderSettings
    path: Path | None = None  # the folder, for local pipeline folders

    @property
    def random_weights(self) -> bool:
        return bool(self.preset and self.preset.random_weights)

    @property
    def license(self) -> str | None:
        """The license its identity alone tells (a known Hub id or built-in model), else None."""
        return known_license(self.model)


def resolve_spec(spec: str, generator_config: GeneratorSettings, root: Path) -> ModelSpec:
    """Read one model entry: a preset name, builtin:NAME, a local folder, or a Hub id (optionally `id@revision`)."""
    preset = find_preset(spec)
    model, source, revision, folder = spec, "hub", None, None
    if preset is not None:
        model = preset.model_id
        source = "builtin" if model.startswith(BUILTIN_PREFIX) else "hub"
    elif spec.startswith(BUILTIN_PREFIX):
        raise InputError(
            f"generator.models: {spec!r} is not a built-in model; known: "
            + ", ".join(BUILTIN_PREFIX + name for name in TINY_MODELS)
        )
    else:
        path = Path(spec).expanduser()
        path = path if path.is_absolute() else root / path
        if path.is_dir() or spec.startswith((".", "/", "~")):
            if not (path / "model_index.json").is_file():
                raise InputError(f"generator.models: {spec!r}: no diffusers pipeline there (no model_index.json)")
            model, source, folder = _folder_name(path, root), "folder", path.resolve()
        elif "@" in spec:
            model, revision = spec.split("@", 1)
    if source == "hub" and model.count("/") != 1:
        raise InputError(
            f"generator.models: {spec!r} is neither a preset, a folder nor a Hub id (owner/name); presets: "
            + ", ".join(sorted(PRESETS))
        )
    use_preset = preset is not None and generator_config.preset_settings
    if use_preset and preset is not None:
        settings = RenderSettings(
            preset.steps, preset.guidance, preset.width, preset.height, tuple(sorted(preset.call_kwargs.items()))
        )
    else:
        settings = RenderSettings(
            generator_config.steps,
            generator_config.guidance,
            generator_config.width,
            generator_config.height,
            tuple(sorted(preset.call_kwargs.items())) if preset else (),
        )
    return ModelSpec(spec, model, source, revision, preset, settings, folder)


def _folder_name(path: Path, root: Path) -> str:
    """A folder's recorded name: relative to the workspace when inside it, else absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def folder_revision(folder: Path, store: Store | None = None) -> str:
    """A hash of every file in a model folder (names, sizes, contents); cached by name, size and mtime."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    stamp = [(p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    key = "folder_revision:" + hashlib.sha256(repr((str(folder.resolve()), stamp)).encode()).hexdigest()
    if store is not None and (cached := store.cache_get(key)) is not None:
        return str(cached)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    revision = "sha256:" + digest.hexdigest()
    if store is not None:
        store.cache_put(key, revision)
    return revision


@dataclass(frozen=True)
class LocatedModel:
    """A model resolved to a folder on disk and the revision recorded with its renders."""

    spec: ModelSpec
    folder: Path
    revision: str

    @property
    def license(self) -> str:
        """The license its renders record: by Hub id, else from its model card (beside the weights or in the Hub
        cache), else `unknown`."""
        revision = self.revision if self.spec.source == "hub" else None
        return model_license(self.spec.model, folder=self.folder, revision=revision)


def locate(spec: ModelSpec, models_dir: Path, store: Store | None = None) -> LocatedModel:
    """Find (build, or fetch from the Hub cache) a model's folder and its revision; fails with one clear line."""
    quiet_libraries()
    if spec.source == "builtin":
        folder = ensure_tiny_model(spec.model.removeprefix(BUILTIN_PREFIX), models_dir)
        return LocatedModel(spec, folder, folder_revision(folder, store))
    if spec.path is not None:
        return LocatedModel(spec, spec.path, folder_revision(spec.path, store))
    return LocatedModel(spec, *_hub_snapshot(spec))


def locate_present(spec: ModelSpec, models_dir: Path, store: Store | None = None) -> LocatedModel | None:
    """The model's folder and revision if it is on this machine already (nothing built or downloaded), else None."""
    if spec.source == "builtin":
        folder = models_dir / spec.model.removeprefix(BUILTIN_PREFIX)
        return LocatedModel(spec, folder, folder_revision(folder, store)) if (folder / INDEX).is_file() else None
    if spec.path is not None:
        return LocatedModel(spec, spec.path, folder_revision(spec.path, store))
    from curation.core import hub

    cached = hub.cached_file(spec.model, [INDEX], revision=spec.requested_revision)
    return LocatedModel(spec, cached.parent, cached.parent.name) if cached is not None else None


def pipeline_classes(folder: Path) -> dict[str, str | None]:
    """The pipeline and scheduler classes a diffusers folder loads (from its model_index.json)."""
    try:
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WidespecError(f"{folder / INDEX}: unreadable ({exc}); is this a diffusers pipeline folder?") from None
    scheduler = index.get("scheduler")
    return {
        "pipeline": index.get("_class_name"),
        "scheduler": scheduler[1] if isinstance(scheduler, list) and len(scheduler) == 2 else None,
    }


def _hub_snapshot(spec: ModelSpec) -> tuple[Path, str]:
    from diffusers import DiffusionPipeline
    from huggingface_hub import constants

    try:
        folder = Path(DiffusionPipeline.download(spec.model, revision=spec.requested_revision))
    except Exception as exc:
        offline = " (HF_HUB_OFFLINE is set: only models already in the Hugging Face cache can load)"
        hint = offline if constants.HF_HUB_OFFLINE else " (check the id, your network, and HF_TOKEN for gated models)"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WidespecError(f"generator.models: cannot load {spec.spec!r}{hint}: {reason}") from exc
    _fetch_card(spec.model, folder.name)
    return folder, folder.name


def _fetch_card(repo: str, commit: str) -> None:
    """Bring the model card into the Hub cache beside the weights (diffusers leaves it out), for its license.
    Best effort: offline, a repo without a card or a failed request leave the license to what is known."""
    from huggingface_hub import constants, hf_hub_download

    if constants.HF_HUB_OFFLINE:
        return
    try:
        hf_hub_download(repo, CARD, revision=commit)
    except Exception as exc:  # any failure only means the card stays unknown here
        log.debug("no model card for %s@%s: %s", repo, commit, exc)


def quiet_libraries() -> None:
    """No download, loading or saving progress bars from diffusers, transformers or huggingface_hub."""
    import huggingface_hub
    import transformers
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    huggingface_hub.utils.disable_progress_bars()


def load_pipeline(
    located: LocatedModel, *, device: str, dtype: str, cpu_offload: bool = False, compile_model: bool = False
) -> Any:
    """`DiffusionPipeline.from_pretrained(folder)` on the chosen device and dtype, progress bars off."""
    from diffusers import DiffusionPipeline

    from curation.generate.device import torch_dtype

    quiet_libraries()
    try:
        pipeline = DiffusionPipeline.from_pretrained(located.folder, dtype=torch_dtype(dtype))
    except Exception as exc:
        raise WidespecError(
            f"generator.models: {located.spec.spec!r} did not load from {located.folder}: {exc}"
        ) from exc
    if cpu_offload and device != "cpu":
        pipeline.enable_model_cpu_offload(device=device)
    else:
        pipeline.to(device)
    if compile_model:
        for name in ("transformer", "unet"):
            module = getattr(pipeline, name, None)
            if module is not None:
                module.compile()
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
