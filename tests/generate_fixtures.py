"""Fixtures for the generate stage: tiny models built once per session, workspaces with prompts and variants."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from curation.core.config import set_value
from curation.core.ids import content_hash, stable_id
from curation.core.records import LEXICON_REWRITER, decision_record, variant_record
from curation.core.workspace import Workspace, init_workspace
from curation.generate.tiny import ensure_tiny_model
from curation.prompts.importing import import_prompts

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_PROMPTS = [
    "a red bicycle leaning against a brick wall",
    "two dogs playing in the snow",
    "a bowl of oranges on a wooden table",
]
ANTI_SUFFIXES = [", blurry, noisy and badly underexposed", ", in sickly clashing colours with an empty background"]


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding builtin tiny-sd and tiny-flux, built once for the whole test session."""
    folder = tmp_path_factory.mktemp("tiny-models")
    for name in ("tiny-sd", "tiny-flux"):
        ensure_tiny_model(name, folder)
    return folder


def add_variants(ws: Workspace, texts: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Variant records as the rewrite stage writes them (ANTI_SUFFIXES appended to each base prompt, or `texts`),
    each with the text decision accept."""
    records = []
    for base in ws.store.iter("base_prompt"):
        variants = texts.get(base["text"], []) if texts else [base["text"] + s for s in ANTI_SUFFIXES]
        for index, text in enumerate(variants):
            records.append(
                variant_record(
                    stable_id("variant", base["id"], index, text),
                    base["id"],
                    index,
                    ["clarity", "colour_aesthetic"],
                    "moderate",
                    text,
                    rewriter=LEXICON_REWRITER,
                    taxonomy={"name": "test", "version": "1.0.0", "hash": content_hash("test taxonomy")},
                )
            )
    ws.store.put("variant", records)
    # Variants the text checks passed: generate renders only those.
    ws.store.put("decision", [decision_record(r["id"], "text", "accept", [], {}) for r in records])
    return records


def configure(ws: Workspace, **generator: Any) -> None:
    """Set [generator] keys in widespec.toml and reload."""
    for key, value in generator.items():
        set_value(ws.config_path, "generator", key, value)
    ws.reload_config()


MakeWorkspace = Callable[..., Workspace]


@pytest.fixture
def make_workspace(tmp_path: Path, tiny_models_dir: Path) -> Iterator[MakeWorkspace]:
    """Workspaces with BASE_PROMPTS, two variants each, and the session's tiny models."""
    opened: list[Workspace] = []

    def make(name: str = "ws", prompts: list[str] | None = None, **generator: Any) -> Workspace:
        ws = init_workspace(tmp_path / name)
        opened.append(ws)
        source = tmp_path / f"{name}-prompts.txt"
        source.write_text("\n".join(prompts or BASE_PROMPTS) + "\n", encoding="utf-8")
        import_prompts(ws, str(source))
        add_variants(ws)
        configure(ws, models_dir=str(tiny_models_dir), **generator)
        return ws

    yield make
    for ws in opened:
        ws.close()


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WIDESPEC_WORKSPACE", None)
    return env


def start_cli(workspace: Path, *args: str) -> subprocess.Popen[str]:
    """`widespec -w WORKSPACE ARGS…` in a new process (this checkout's code)."""
    command = [
        sys.executable,
        "-c",
        "from curation.app.cli import main; main()",
        "-w",
        str(workspace),
        "--quiet",
        *args,
    ]
    return subprocess.Popen(command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_cli(workspace: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    process = start_cli(workspace, *args)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def render_images(ws: Workspace) -> dict[str, str | None]:
    """render id → image sha256 (None for failures)."""
    return {r["id"]: r["image_sha256"] for r in ws.store.iter("render")}


def crash_once_loader(located: Any, *, marker: str, **options: Any) -> Any:
    """A pipeline loader whose pipeline kills its process in the middle of its first batch (once: `marker`
    records it), as an out-of-memory kill or a preempted node does."""
    from curation.generate.models import load_pipeline

    pipeline = load_pipeline(located, **options)

    class CrashOnce(type(pipeline)):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            if not os.path.exists(marker):
                Path(marker).write_text("crashed", encoding="utf-8")
                os._exit(1)
            return super().__call__(*args, **kwargs)

    pipeline.__class__ = CrashOnce
    return pipeline


def raising_loader(located: Any, *, word: str, **options: Any) -> Any:
    """A pipeline loader whose pipeline raises, as model code can, for every prompt holding `word`."""
    from curation.generate.models import load_pipeline

    pipeline = load_pipeline(located, **options)

    class Raising(type(pipeline)):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            prompts = kwargs["prompt"] if isinstance(kwargs["prompt"], list) else [kwargs["prompt"]]
            if any(word in prompt for prompt in prompts):
                raise RuntimeError(f"CUDA error: an illegal memory access was encountered ({word})")
            return super().__call__(*args, **kwargs)

    pipeline.__class__ = Raising
    return pipeline
