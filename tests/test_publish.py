"""Publishing to an in-process Hub stand-in with huggingface_hub's own client, and to a Hub that never answers."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from datasets import Image, load_dataset
from typer.testing import CliRunner

from benchmarks.synthetic_releases import PairSpec, add_pairs
from curation.app.cli import app
from curation.core.config import set_value
from curation.core.errors import InputError, WidespecError
from curation.core.workspace import Workspace
from exports.export import export_version
from exports.publish import PublishPlan, PublishResult, publish
from exports.versions import release_id
from tests.hub_fake import FakeHub, installed

TOKEN = "hf_test_token_0123456789"
pytestmark = [
    pytest.mark.slow,  # every test builds a release and publishes it to the fake Hub
    # huggingface_hub's LFS upload passes a file object as `data=`, which httpx2 deprecates; not ours to change.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with installed(FakeHub()) as fake:
        yield fake


@pytest.fixture
def released(workspace: Workspace) -> Workspace:
    set_value(workspace.config_path, "export", "hard_negatives", True)
    workspace.reload_config()
    add_pairs(workspace, [PairSpec()] * 3 + [PairSpec(clip="reject")])
    export_version(workspace, "1.0.0")
    return workspace


def _rows(source: str, **kwargs: str) -> list[dict[str, object]]:
    ds = load_dataset(source, split="train", **kwargs)
    ds = ds.cast_column("image_base", Image(decode=False)).cast_column("image_anti", Image(decode=False))
    return [{**row, "image_base": row["image_base"]["bytes"], "image_anti": row["image_anti"]["bytes"]} for row in ds]


def test_publish_then_load_by_revision(released: Workspace, hub: FakeHub) -> None:
    transport = httpx2.MockTransport(hub.handle)
    result = publish(released, "1.0.0", "lab/wide-spectrum", private=True, transport=transport)
    assert isinstance(result, PublishResult) and result.created_repo
    repo = hub.repos["lab/wide-spectrum"]
    assert repo.private and repo.tags == {"v1.0.0": result.commit}
    assert hub.tokens_seen == {TOKEN}

    folder = released.exports_dir / "v1.0.0"
    assert _rows("lab/wide-spectrum", revision="v1.0.0") == _rows(str(folder))
    hard = load_dataset("lab/wide-spectrum", "hard_negatives", revision="v1.0.0", split="train")
    assert hard["id"] == load_dataset(str(folder), "hard_negatives", split="train")["id"]

    # A second version goes to the same repo; the first stays loadable, unchanged, by its tag.
    add_pairs(released, [PairSpec()] * 2, start=10)
    export_version(released, "1.1.0", notes="two more pairs")
    second = publish(released, "1.1.0", "lab/wide-spectrum", transport=transport)
    assert isinstance(second, PublishResult) and not second.created_repo
    assert len(_rows("lab/wide-spectrum", revision="v1.1.0")) == 5
    assert _rows("lab/wide-spectrum", revision="v1.0.0") == _rows(str(folder))


def test_second_publish_of_a_version_is_refused(released: Workspace, hub: FakeHub) -> None:
    transport = httpx2.MockTransport(hub.handle)
    first = publish(released, "1.0.0", "lab/wide", transport=transport)
    assert isinstance(first, PublishResult)
    commits = len(hub.repos["lab/wide"].commits)
    with pytest.raises(WidespecError, match=r"already has tag v1\.0\.0"):
        publish(released, "1.0.0", "lab/wide", transport=transport)
    assert len(hub.repos["lab/wide"].commits) == commits
    assert hub.repos["lab/wide"].tags == {"v1.0.0": first.commit}
    assert released.store.runs(1, stage="publish")[0]["status"] == "failed"


def test_dry_run_contacts_nothing_and_lists_files(
    released: Workspace, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN")
    plan = publish(released, "1.0.0", "lab/wide", dry_run=True, transport=httpx2.MockTransport(hub.handle))
    assert isinstance(plan, PublishPlan) and hub.requests == []
    paths = [p for p, _ in plan.files]
    assert "README.md" in paths and "data/train-00000-of-00001.parquet" in paths
    assert "hard_negatives/train-00000-of-00001.parquet" in paths

    out = CliRunner().invoke(
        app, ["-w", str(released.root), "publish", "--version", "1.0.0", "--repo", "lab/wide", "--dry-run"]
    )
    assert out.exit_code == 0, out.output
    assert "would upload" in out.stdout and "data/train-00000-of-00001.parquet" in out.stdout and hub.requests == []


def test_publish_needs_token_and_an_intact_release(
    released: Workspace, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="has not been exported"):
        publish(released, "2.0.0", "lab/wide")
    with pytest.raises(InputError, match="OWNER/NAME"):
        publish(released, "1.0.0", "no-owner")
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(InputError, match="HF_TOKEN is not set"):
        publish(released, "1.0.0", "lab/wide")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    shard = released.exports_dir / "v1.0.0" / "data" / "train-00000-of-00001.parquet"
    shard.chmod(0o644)
    shard.write_bytes(shard.read_bytes()[:-100] + bytes(100))
    with pytest.raises(WidespecError, match=r"data/train-00000-of-00001\.parquet was changed since release 1\.0\.0"):
        publish(released, "1.0.0", "lab/wide", transport=httpx2.MockTransport(hub.handle))
    # A release exported before manifests existed is still checked by its shards' content hash.
    legacy = released.store.get("release", release_id("1.0.0"))
    assert legacy is not None
    released.store.put("release", [{k: v for k, v in legacy.items() if k != "manifest"}], on_conflict="replace")
    with pytest.raises(WidespecError, match=r"no longer match release 1\.0\.0"):
        publish(released, "1.0.0", "lab/wide", transport=httpx2.MockTransport(hub.handle))
    assert hub.requests == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("README.md", "README.md was changed"),
        ("plots/fidelity.png", "plots/fidelity.png was changed"),
        ("notes.txt", "notes.txt was added"),
        ("-gallery", "is missing"),
    ],
)
def test_publish_refuses_any_edited_file_of_the_version_folder(
    released: Workspace, hub: FakeHub, edit: str, message: str
) -> None:
    """Every file is in the release's manifest: card, plots, gallery and shards alike."""
    folder = released.exports_dir / "v1.0.0"
    record = released.store.get("release", release_id("1.0.0"))
    assert record is not None and set(record["manifest"]) == {
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
    }
    folder.chmod(0o755)
    if edit == "-gallery":
        victim = next(p for p in sorted(folder.rglob("*")) if p.is_file() and "gallery" in p.parts)
        victim.parent.chmod(0o755)
        victim.unlink()
    elif (folder / edit).exists():
        target = folder / edit
        target.chmod(0o644)
        target.write_bytes(target.read_bytes() + b"\n")
    else:
        (folder / edit).write_text("an afterthought\n")
    with pytest.raises(WidespecError, match=message):
        publish(released, "1.0.0", "lab/wide", transport=httpx2.MockTransport(hub.handle))
    assert hub.requests == []


@pytest.fixture
def silent_hub() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_unresponsive_hub_fails_within_the_deadline(
    released: Workspace, silent_hub: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import datasets.config
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    set_value(released.config_path, "export", "hub_timeout_s", 0.5)
    set_value(released.config_path, "export", "publish_deadline_s", 2)
    released.reload_config()
    started = time.monotonic()
    with pytest.raises(WidespecError, match=r"did not answer in time .*per request 0\.5 s, whole publish 2 s"):
        publish(released, "1.0.0", "lab/wide", endpoint=silent_hub)
    assert time.monotonic() - started < 10
    run = released.store.runs(1, stage="publish")[0]
    assert run["status"] == "failed" and "did not answer" in run["error"]


def test_a_wait_outside_http_timeouts_still_ends_at_the_deadline(
    released: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transport that ignores timeouts (as an upload outside httpx would) is cut off by the watchdog."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr("exports.publish.WATCHDOG_GRACE_S", 0.5)
    release = threading.Event()

    def stuck(request: httpx2.Request) -> httpx2.Response:
        release.wait(30)
        return httpx2.Response(503)

    set_value(released.config_path, "export", "publish_deadline_s", 1)
    released.reload_config()
    started = time.monotonic()
    try:
        with installed(FakeHub()), pytest.raises(WidespecError, match="did not answer in time"):
            publish(released, "1.0.0", "lab/wide", transport=httpx2.MockTransport(stuck))
        assert time.monotonic() - started < 5
    finally:
        release.set()


def test_shards_and_images_travel_through_lfs(released: Workspace, hub: FakeHub) -> None:
    publish(released, "1.0.0", "lab/lfs", transport=httpx2.MockTransport(hub.handle))
    folder = released.exports_dir / "v1.0.0"
    binary = [p for p in folder.rglob("*") if p.suffix in (".parquet", ".png")]
    assert binary and {hashlib.sha256(p.read_bytes()).hexdigest() for p in binary} <= set(hub.lfs)
    assert any(r.startswith("PUT /lfs-upload/") for r in hub.requests)
    assert any(r.endswith(".git/info/lfs/objects/batch") for r in hub.requests)


def test_publish_interrupted_before_the_tag_resumes_without_a_new_commit(released: Workspace, hub: FakeHub) -> None:
    transport = httpx2.MockTransport(hub.handle)
    hub.fail_next_tag = True
    with pytest.raises(WidespecError, match=r"publishing v1\.0\.0 to lab/wide failed"):
        publish(released, "1.0.0", "lab/wide", transport=transport)
    repo = hub.repos["lab/wide"]
    assert repo.tags == {}
    commits = len(repo.commits)
    result = publish(released, "1.0.0", "lab/wide", transport=transport)
    assert isinstance(result, PublishResult)
    assert len(repo.commits) == commits, "unchanged files are not committed again"
    assert repo.tags == {"v1.0.0": repo.branches["main"]}
