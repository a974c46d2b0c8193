"""An in-process stand-in for the Hugging Face Hub's HTTP API, driven by huggingface_hub's own client.

It speaks the parts of the protocol that publishing and `load_dataset` use: create repo, refs, preupload (binary
files are sent to LFS, text files inline, as on the Hub), LFS batch + basic PUT upload, commit (ndjson), tree,
paths-info, dataset info, resolve (with ranges) and tags. Install it with
`huggingface_hub.set_client_factory` around an `httpx2.MockTransport(hub.handle)`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx2
import yaml


@dataclass
class Repo:
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # oid -> files
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.branches.get(revision) or self.tags.get(revision)


def _oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _error(status: int, code: str, message: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": message}, headers={"X-Error-Code": code, "X-Error-Message": message})


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> uploaded object
    requests: list[str] = field(default_factory=list)
    tokens_seen: set[str] = field(default_factory=set)
    fail_next_tag: bool = False

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = unquote(request.url.path)
        self.requests.append(f"{request.method} {path}")
        if auth := request.headers.get("authorization"):
            self.tokens_seen.add(auth.removeprefix("Bearer "))
        if request.method == "POST" and path == "/api/repos/create":
            return self._create(json.loads(request.content))
        if path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(request.content)["content"])
        if path == "/api/agent-harnesses":
            return httpx2.Response(200, json={"standardEnvVars": [], "harnesses": {}})
        api = re.match(
            r"^/api/datasets/([^/]+/[^/]+)/(refs|preupload|commit|tree|paths-info|tag|revision)(?:/(.*))?$", path
        )
        if api:
            repo_id, action, rest = api.group(1), api.group(2), api.group(3) or ""
            repo = self.repos.get(repo_id)
            if repo is None:
                return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return getattr(self, "_" + action.replace("-", "_"))(request, repo_id, repo, rest)
        info = re.match(r"^/api/datasets/([^/]+/[^/]+)$", path)
        if info and request.method == "GET":  # dataset info at the default branch
            repo = self.repos.get(info.group(1))
            if repo is None:
                return _error(404, "RepoNotFound", f"Repository {info.group(1)} not found")
            return self._revision(request, info.group(1), repo, "main")
        batch = re.match(r"^/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch$", path)
        if batch and request.method == "POST":
            return self._lfs_batch(json.loads(request.content))
        upload = re.match(r"^/lfs-upload/([0-9a-f]{64})$", path)
        if upload and request.method == "PUT":
            if hashlib.sha256(request.content).hexdigest() != upload.group(1):
                return _error(400, "BadRequest", "uploaded bytes do not match the announced oid")
            self.lfs[upload.group(1)] = request.content
            return httpx2.Response(200)
        resolve = re.match(r"^/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if resolve:
            return self._resolve(request, *resolve.groups())
        return _error(404, "EntryNotFound", f"fake Hub has no route for {request.method} {path}")

    @staticmethod
    def _validate_yaml(content: str) -> httpx2.Response:
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            metadata = yaml.safe_load(match.group(1)) if match else None
        except yaml.YAMLError as exc:
            return httpx2.Response(400, json={"errors": [{"message": str(exc)}], "warnings": []})
        if not isinstance(metadata, dict):
            return httpx2.Response(
                200, json={"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]}
            )
        return httpx2.Response(200, json={"errors": [], "warnings": []})

    def _create(self, payload: dict[str, Any]) -> httpx2.Response:
        repo_id = (
            f"{payload['organization'] or 'user'}/{payload['name']}" if "/" not in payload["name"] else payload["name"]
        )
        if repo_id in self.repos:
            return httpx2.Response(409, json={"error": "You already created this dataset repo", "url": repo_id})
        repo = Repo(private=payload.get("visibility") == "private")
        oid = _oid(repo_id.encode())
        repo.commits[oid] = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}
        repo.branches["main"] = oid
        self.repos[repo_id] = repo
        return httpx2.Response(200, json={"url": f"https://huggingface.co/datasets/{repo_id}", "name": repo_id})

    def _refs(self, request: httpx2.Request, repo_id: str, repo: Repo, rest: str) -> httpx2.Response:
        def refs(kind: str, items: dict[str, str]) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": o} for n, o in sorted(items.items())]

        return httpx2.Response(
            200, json={"branches": refs("heads", repo.branches), "tags": refs("tags", repo.tags), "converts": []}
        )

    def _preupload(self, request: httpx2.Request, repo_id: str, repo: Repo, rest: str) -> httpx2.Response:
        head = repo.resolve(rest)
        current = repo.commits[head] if head else {}
        entries = []
        for f in json.loads(request.content)["files"]:
            lfs = f["path"].endswith((".parquet", ".png"))
            entry = {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if f["path"] in current:  # the Hub tells the client what it holds, so unchanged files are skipped
                data = current[f["path"]]
                entry["oid"] = hashlib.sha256(data).hexdigest() if lfs else _oid(data)
            entries.append(entry)
        return httpx2.Response(200, json={"files": entries})

    def _lfs_batch(self, payload: dict[str, Any]) -> httpx2.Response:
        objects = []
        for obj in payload["objects"]:
            action = (
                {}
                if obj["oid"] in self.lfs
                else {"actions": {"upload": {"href": f"https://huggingface.co/lfs-upload/{obj['oid']}"}}}
            )
            objects.append({"oid": obj["oid"], "size": obj["size"], **action})
        return httpx2.Response(200, json={"transfer": "basic", "objects": objects})

    def _commit(self, request: httpx2.Request, repo_id: str, repo: Repo, rest: str) -> httpx2.Response:
        head = repo.resolve(rest)
        if head is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {rest}")
        files = dict(repo.commits[head])
        for line in request.content.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "lfsFile":
                if item["value"]["oid"] not in self.lfs:
                    return _error(400, "BadRequest", f"LFS object of {item['value']['path']} was never uploaded")
                files[item["value"]["path"]] = self.lfs[item["value"]["oid"]]
            elif item["key"] == "deletedFile":
                files.pop(item["value"]["path"], None)
            elif item["key"] not in ("header",):
                return _error(400, "BadRequest", f"fake Hub does not support {item['key']}")
        oid = hashlib.sha1(
            json.dumps({p: _oid(d) for p, d in sorted(files.items())}).encode() + head.encode()
        ).hexdigest()
        repo.commits[oid] = files
        repo.branches[rest] = oid
        url = f"https://huggingface.co/datasets/{repo_id}/commit/{oid}"
        return httpx2.Response(200, json={"commitUrl": url, "commitOid": oid, "pullRequestUrl": None})

    def _tag(self, request: httpx2.Request, repo_id: str, repo: Repo, rest: str) -> httpx2.Response:
        if self.fail_next_tag:
            self.fail_next_tag = False
            return _error(500, "InternalError", "tag service unavailable")
        name = json.loads(request.content)["tag"]
        if name in repo.tags:
            return httpx2.Response(409, json={"error": f"Tag {name} already exists"})
        target = repo.resolve(rest)
        if target is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {rest}")
        repo.tags[name] = target
        return httpx2.Response(200, json={})

    def _files(self, repo: Repo, revision: str) -> tuple[str, dict[str, bytes]] | httpx2.Response:
        oid = repo.resolve(revision)
        if oid is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return oid, repo.commits[oid]

    @staticmethod
    def _entry(path: str, data: bytes) -> dict[str, Any]:
        return {"type": "file", "path": path, "oid": _oid(data), "size": len(data)}

    def _tree(self, request: httpx2.Request, repo_id: str, repo: Repo, rest: str) -> httpx2.Response:
        revision, _, prefix = rest.partition("/")
        found = self._files(repo, revision)
        if isinstance(found, httpx2.Response):
            return found
        recursive = request.url.params.get("recursive", "false").lower() == "true"
        entries, folders = [], set()
        for path, data in sorted(found[1].items()):
            if prefix and not path.startswith(prefix.rstrip("/") + "/"):
                continue
            relative = path[len(prefix.rstrip("/")) + 1 :] if prefix else path
            parts = relative.split("/")
            base = f"{prefix.rstrip('/')}/" if prefix else ""
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folders.add(base + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                entries.append(self._entry(path, data))
        entries += [{"type": "directory", "path": f, "oid": _oid(f.encode()), "size": 0} for f in sorted(folders)]
        return httpx2.Response(200, json=entries)

    def _paths_info(self, request: httpx2.Request, repo_id: str, repo: Repo, rest: str) -> httpx2.Response:
        found = self._files(repo, rest)
        if isinstance(found, httpx2.Response):
            return found
        body = request.content.decode()
        paths = json.loads(body)["paths"] if body.startswith("{") else httpx2.QueryParams(body).get_list("paths")
        files = found[1]
        out = []
        for p in paths:
            if p in files:
                out.append(self._entry(p, files[p]))
            elif any(f.startswith(p.rstrip("/") + "/") for f in files):
                out.append({"type": "directory", "path": p, "oid": _oid(p.encode()), "size": 0})
        return httpx2.Response(200, json=out)

    def _revision(self, request: httpx2.Request, repo_id: str, repo: Repo, rest: str) -> httpx2.Response:
        found = self._files(repo, rest)
        if isinstance(found, httpx2.Response):
            return found
        oid, files = found
        siblings = [{"rfilename": p, "size": len(d)} for p, d in sorted(files.items())]
        return httpx2.Response(
            200,
            json={"id": repo_id, "_id": oid, "sha": oid, "private": repo.private, "siblings": siblings, "tags": []}
            | {"lastModified": "2026-01-01T00:00:00.000Z", "disabled": False, "gated": False, "downloads": 0},
        )

    def _resolve(self, request: httpx2.Request, repo_id: str, revision: str, path: str) -> httpx2.Response:
        repo = self.repos.get(repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
        found = self._files(repo, revision)
        if isinstance(found, httpx2.Response):
            return found
        oid, files = found
        if path not in files:
            return _error(404, "EntryNotFound", f"{path} does not exist at {revision}")
        data = files[path]
        headers = {"ETag": f'"{_oid(data)}"', "X-Repo-Commit": oid, "Accept-Ranges": "bytes"}
        status = 200
        if ranges := re.match(r"bytes=(\d+)-(\d*)", request.headers.get("range", "")):
            start, end = int(ranges.group(1)), int(ranges.group(2) or len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{min(end, len(data) - 1)}/{len(data)}"
            data, status = data[start : end + 1], 206
        headers["Content-Length"] = str(len(data))
        return httpx2.Response(status, content=b"" if request.method == "HEAD" else data, headers=headers)


@contextmanager
def installed(hub: FakeHub) -> Iterator[FakeHub]:
    """Make huggingface_hub and datasets talk to `hub` (online mode, mock transport) for the block."""
    import datasets.config
    from huggingface_hub import constants

    from curation.core.hub import network

    saved = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = False
    try:
        with network(httpx2.MockTransport(hub.handle)):
            yield hub
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved
