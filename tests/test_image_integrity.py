"""Every reader of a stored image checks it against the sha256 it is named after: a damaged file (a truncated or
partial copy, a flipped bit that still decodes) is a failed row or a one-line refusal naming it, never a score, a
judgment, a task or a release of the wrong bytes."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import httpx
import pytest
from PIL import Image

from annotation.server import Connection
from annotation.uploads import Uploader
from annotation.workflow import LocalImages
from benchmarks.synthetic_pairs import add_pair
from curation.app.report import write_report
from curation.core.config import set_value
from curation.core.errors import ImageDamaged
from curation.core.pairs import iter_pairs
from curation.core.workspace import Workspace
from exports.export import export_version
from tests.dataset_fixtures import noise_png, populate


def flip_a_pixel(path: Path) -> None:
    """Damage that still decodes: the same PNG with one pixel changed, under the old name."""
    with Image.open(path) as image:
        picture = image.convert("RGB")
    red, green, blue = picture.getpixel((0, 0))  # type: ignore[misc]
    picture.putpixel((0, 0), (255 - red, green, blue))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def truncate(path: Path) -> None:
    """A partial copy: the first half of the file."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_reading_a_damaged_image_raises_naming_it(workspace: Workspace) -> None:
    sha = workspace.images.put(noise_png(1))
    assert workspace.images.read(sha) == workspace.images.path_for(sha).read_bytes()
    for damage in (truncate, flip_a_pixel):
        sha = workspace.images.put(noise_png(2 if damage is truncate else 3))
        damage(workspace.images.path_for(sha))
        with pytest.raises(ImageDamaged) as raised:
            workspace.images.read(sha)
        assert raised.value.sha256 == sha and str(workspace.images.path_for(sha)) in str(raised.value)
        assert f"image {sha} is damaged" in str(raised.value) and "widespec verify" in str(raised.value)
    copied = pickle.loads(pickle.dumps(raised.value))  # it crosses processes (DataLoader workers, Ray)
    assert (copied.sha256, copied.path, str(copied)) == (raised.value.sha256, raised.value.path, str(raised.value))


def test_export_refuses_a_damaged_image_naming_it_and_writes_no_version(workspace: Workspace) -> None:
    populate(workspace, 4)  # pairs 0 and 2 have human verdicts: the release's rows
    pair = next(p for p in iter_pairs(workspace.store) if workspace.store.count("verdict", subject_id=p.id))
    sha = pair.anti_render["image_sha256"]
    truncate(workspace.images.path_for(sha))
    with pytest.raises(ImageDamaged, match=f"image {sha} is damaged"):
        export_version(workspace, "1.0.0")
    assert workspace.store.count("release") == 0
    assert not list(workspace.exports_dir.iterdir())  # no version folder, no work folder left behind
    assert workspace.store.runs(stage="export")[0]["status"] == "failed"


@pytest.mark.slow
def test_score_fails_the_pair_of_a_damaged_image_naming_it(workspace: Workspace) -> None:
    from curation.score.stage import run_score

    set_value(workspace.config_path, "scorer", "model", "builtin:tiny-clip")
    workspace.reload_config()
    good = add_pair(workspace, "a teapot", "a blurry teapot", ["blurry"], seed=3)
    damaged = add_pair(workspace, "a kettle", "a noisy kettle", ["noisy"], seed=4)
    flip_a_pixel(workspace.images.path_for(damaged.anti_sha))
    result = run_score(workspace)
    assert (result.pairs_scored, result.pairs_failed, result.images_failed) == (1, 1, 1)
    fidelity = {r["subject_id"]: r for r in workspace.store.iter("score", metric="fidelity")}
    assert fidelity[good.pair_id]["status"] == "ok"
    failed = fidelity[damaged.pair_id]
    assert failed["status"] == "failed" and failed["value"] is None
    assert f"image {damaged.anti_sha} is damaged" in failed["error"]


@pytest.mark.slow
def test_audit_fails_the_pair_of_a_damaged_image_naming_it(workspace: Workspace) -> None:
    from curation.audit.specs import resolve_names
    from curation.audit.stage import AuditOptions, audit

    populate(workspace, 4)
    pair = next(iter(iter_pairs(workspace.store)))
    sha = pair.base_render["image_sha256"]
    flip_a_pixel(workspace.images.path_for(sha))
    (spec,) = resolve_names("tiny-clip", {})
    result = audit(workspace, AuditOptions(spec))
    assert (result.counts["pairs_audited"], result.counts["pairs_failed"]) == (3, 1)
    (failed,) = workspace.store.iter("audit", status="failed")
    assert failed["subject_id"] == pair.id and failed["scores"] is None
    assert f"the base image {sha} is damaged" in failed["error"]


def test_a_push_uploads_no_damaged_image(workspace: Workspace) -> None:
    good, bad = workspace.images.put(noise_png(1)), workspace.images.put(noise_png(2))
    truncate(workspace.images.path_for(bad))
    posted: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        return httpx.Response(500)

    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        uploader = Uploader(Connection("http://ls.invalid", "token"), 1, http, concurrency=1, batch=4)
        images = [(sha, workspace.images.path_for(sha)) for sha in (good, bad)]
        with pytest.raises(ImageDamaged, match=f"image {bad} is damaged"):
            list(uploader.upload(images))
    assert not posted  # the request holding the damaged file was never sent


def test_a_push_to_the_local_server_refuses_a_damaged_image(workspace: Workspace) -> None:
    good, bad = workspace.images.put(noise_png(1)), workspace.images.put(noise_png(2))
    flip_a_pixel(workspace.images.path_for(bad))
    local = LocalImages(workspace.root / "images", workspace.root)
    with pytest.raises(ImageDamaged, match=f"image {bad} is damaged"):
        next(local.urls(None, 1, {good, bad}, httpx.Client()))  # before Label Studio is asked anything


def test_the_report_shows_a_damaged_image_as_damaged(workspace: Workspace) -> None:
    populate(workspace, 2)
    pair = next(iter(iter_pairs(workspace.store)))
    sha = pair.anti_render["image_sha256"]
    truncate(workspace.images.path_for(sha))
    html = write_report(workspace).read_text(encoding="utf-8")
    assert f"anti-aesthetic image {sha[:12]} is damaged" in html
