"""`widespec publish`: upload an exported version to a Hugging Face dataset repo and tag it vX.Y.Z."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from curation.core.console import info
from curation.core.errors import InputError, WidespecError
from curation.core.executor import execute
from curation.core.hub import WATCHDOG_GRACE_S, HubDeadlineExceeded, bounded, run_with_deadline
from curation.core.stage import Output, Stage, Work
from curation.core.workspace import Workspace
from exports.integrity import checked_release
from exports.versions import normalise_version, release_id

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
TOKEN_ENV = "HF_TOKEN"
# Remote files of an earlier version that this upload replaces (a shard count can shrink between versions).
VERSIONED_PATTERNS = ["data/*", "hard_negatives/*", "plots/*", "gallery/*"]


@dataclass
class PublishPlan:
    """What a publish does: which folder goes to which repo under which tag."""

    version: str
    repo_id: str
    tag: str
    private: bool
    folder: Path
    files: list[tuple[str, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "repo": self.repo_id,
            "tag": self.tag,
            "private": self.private,
            "folder": str(self.folder),
            "files": [{"path": p, "bytes": n} for p, n in self.files],
            "total_bytes": sum(n for _, n in self.files),
        }


@dataclass
class PublishResult:
    plan: PublishPlan
    created_repo: bool
    commit: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.plan.as_dict(), "created_repo": self.created_repo, "commit": self.commit}


def plan_publish(ws: Workspace, version: str, repo_id: str, private: bool) -> PublishPlan:
    """Check the release locally (record, folder, unchanged content) and list the files to upload."""
    version = normalise_version(version)
    if not REPO_ID.match(repo_id):
        raise InputError(f"--repo {repo_id!r}: expected OWNER/NAME")
    _, folder = checked_release(ws, version)
    files = sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file())
    return PublishPlan(version, repo_id, f"v{version}", private, folder, files)


def _token() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise InputError(f"{TOKEN_ENV} is not set: export a Hugging Face write token as {TOKEN_ENV} to publish")
    return token


def _upload(api: HfApi, plan: PublishPlan, changelog: str) -> tuple[bool, str]:
    try:
        refs = api.list_repo_refs(plan.repo_id, repo_type="dataset")
    except RepositoryNotFoundError:
        refs = None
    if refs is not None and any(tag.name == plan.tag for tag in refs.tags):
        raise WidespecError(
            f"{plan.repo_id} already has tag {plan.tag}: published versions are immutable; export and publish a new "
            "version instead"
        )
    if refs is None:
        api.create_repo(plan.repo_id, repo_type="dataset", private=plan.private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=plan.repo_id,
        repo_type="dataset",
        folder_path=plan.folder,
        commit_message=f"Release {plan.tag}",
        commit_description=changelog,
        delete_patterns=VERSIONED_PATTERNS,
    )
    api.create_tag(plan.repo_id, tag=plan.tag, revision=commit.oid, repo_type="dataset", tag_message=changelog)
    return refs is None, str(commit.oid)


@dataclass(frozen=True)
class Upload:
    """A publish's compute: one upload of the planned folder and its tag, every request and the whole bounded."""

    plan: PublishPlan
    changelog: str
    token: str = field(repr=False)
    endpoint: str | None
    transport: httpx2.BaseTransport | None
    hub_timeout_s: float
    deadline_s: float

    @contextmanager
    def opened(self) -> Iterator[Upload]:
        yield self

    def run(self, units: Sequence[str]) -> Iterator[Output]:
        plan = self.plan
        api = HfApi(endpoint=self.endpoint, token=self.token)
        where = self.endpoint or api.endpoint
        try:
            with bounded(self.hub_timeout_s, self.deadline_s, self.transport):
                created, commit = run_with_deadline(
                    lambda: _upload(api, plan, self.changelog), self.deadline_s + WATCHDOG_GRACE_S, "publish"
                )
        except (httpx2.TimeoutException, HubDeadlineExceeded) as exc:
            raise WidespecError(
                f"the Hub at {where} did not answer in time (per request {self.hub_timeout_s:g} s, whole publish "
                f"{self.deadline_s:g} s; export.hub_timeout_s / export.publish_deadline_s): {type(exc).__name__}; "
                f"tag {plan.tag} was not created, rerun publish to retry"
            ) from None
        except (httpx2.TransportError, HfHubHTTPError) as exc:
            raise WidespecError(f"publishing {plan.tag} to {plan.repo_id} failed: {str(exc).splitlines()[0]}") from None
        counts = Counter({"files": len(plan.files), "created_repo": int(created)})
        yield Output(counts=counts, details={"commit": commit, "created_repo": created}, advance=1)


class Publish(Stage):
    """Uploading a checked release under the workspace lock; the executor's ledger keeps its errors redacted."""

    name = "publish"

    def __init__(
        self, version: str, repo_id: str, private: bool, endpoint: str | None, transport: httpx2.BaseTransport | None
    ) -> None:
        self.version, self.repo_id, self.private = version, repo_id, private
        self.endpoint, self.transport = endpoint, transport
        self.planned: PublishPlan | None = None

    def pending(self, ws: Workspace) -> int:
        return 0  # a version is published when its curator says so

    def plan(self, ws: Workspace, options: Any = None) -> Work:
        self.planned = plan = plan_publish(ws, self.version, self.repo_id, self.private)
        release = ws.store.get("release", release_id(plan.version)) or {}
        cfg = ws.settings.export
        upload = Upload(
            plan,
            release.get("changelog", ""),
            _token(),
            self.endpoint,
            self.transport,
            cfg.hub_timeout_s,
            cfg.publish_deadline_s,
        )
        return Work([plan.tag], upload.opened, label=f"publish {plan.tag}", unit="tags")


def publish(
    ws: Workspace,
    version: str,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    endpoint: str | None = None,
    transport: httpx2.BaseTransport | None = None,
) -> PublishPlan | PublishResult:
    """Upload exports/vX.Y.Z to the dataset repo and tag the commit; refuses a tag that exists.

    With `dry_run` nothing leaves the machine: the plan (files and sizes) is returned. Every request is bounded by
    `export.hub_timeout_s`, the whole publish by `export.publish_deadline_s`. `endpoint` defaults to HF_ENDPOINT,
    `transport` to the network (tests pass an in-process Hub).
    """
    if dry_run:
        return plan_publish(ws, version, repo_id, private)
    stage = Publish(version, repo_id, private, endpoint, transport)
    result = execute(ws, stage)
    assert stage.planned is not None
    commit = str(result.details["commit"])
    info(f"published {stage.planned.tag} to {stage.planned.repo_id} (commit {commit[:12]})")
    return PublishResult(stage.planned, bool(result.details["created_repo"]), commit)
