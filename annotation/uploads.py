"""Images on a team server: uploaded through Label Studio's import API, once per content hash.

A team server (`annotation.url`) shares no filesystem with the curator, so local-files URLs would show its
annotators broken images. Each image a round needs is uploaded as a file of the workspace's images project on
that server (`POST /api/projects/{id}/import?commit_to_project=false`: files stored, no task made), several files
a request and a bounded number of requests at once; the server then serves it at
`/data/upload/<project>/<uuid>-<sha256>.png` to every member of its organization, whichever round shows it.
(Round projects cannot hold the files: Label Studio takes direct file uploads only into a project whose label
config reads one data key, and a round task reads several.) Which sha256 sits at which URL of which server and
project is durable workspace state, written as each request finishes; files that reached the server but not that
state (a push killed mid-request) are found by their name on the next push, so no image is uploaded twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from annotation.server import Connection
from curation.core.errors import WidespecError
from curation.core.ids import content_hash
from curation.core.images import checked
from curation.core.store import Store

MAX_REQUEST_BYTES = 64 * 1024 * 1024  # well under Label Studio's 250 MB request limit
_UPLOADED_NAME = re.compile(r"-([0-9a-f]{64})\.png$")


# The images project's labeling config: one data key, as direct file uploads require.
IMAGES_CONFIG = '<View><Image name="image" value="$image"/></View>'
IMAGES_DESCRIPTION = "Images of widespec rounds, uploaded once each; round tasks show them. It holds no tasks."


def project_key(server_url: str) -> str:
    """The durable-state key holding the id of the workspace's images project on a server."""
    return f"annotation:images-project:{content_hash(server_url.rstrip('/'))[:12]}"


def state_prefix(server_url: str, project_id: int) -> str:
    """The durable-state keys of one project's uploaded images: the prefix plus the image's sha256."""
    return f"annotation:upload:{content_hash(server_url.rstrip('/'))[:12]}:{project_id}:"


def recorded(store: Store, server_url: str, project_id: int) -> dict[str, str]:
    """sha256 → task URL of every image this workspace recorded as uploaded to the project."""
    prefix = state_prefix(server_url, project_id)
    return {key[len(prefix) :]: value["url"] for key, value in store.state_items(prefix).items()}


def state_entries(server_url: str, project_id: int, urls: dict[str, str]) -> dict[str, Any]:
    """The durable-state entries recording `urls` (sha256 → task URL)."""
    prefix = state_prefix(server_url, project_id)
    return {f"{prefix}{sha}": {"server": server_url, "project": project_id, "url": url} for sha, url in urls.items()}


def batches(images: Sequence[tuple[str, Path]], files: int, max_bytes: int = MAX_REQUEST_BYTES) -> list[list[Any]]:
    """Split (sha256, path) pairs into requests of at most `files` files and `max_bytes` bytes (or one file)."""
    out: list[list[Any]] = []
    size = 0
    for sha, path in images:
        length = path.stat().st_size
        if not out or len(out[-1]) >= files or (size + length > max_bytes and out[-1]):
            out.append([])
            size = 0
        out[-1].append((sha, path))
        size += length
    return out


@dataclass(frozen=True)
class Uploader:
    """Uploads PNG files to one project of a team server with bounded concurrency."""

    conn: Connection
    project_id: int
    http: httpx.Client
    concurrency: int
    batch: int

    def _url(self, path: str) -> str:
        return f"{self.conn.url}{path}"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.conn.token}"}

    def _listing(self, params: dict[str, str]) -> dict[str, str]:
        response = self.http.get(
            self._url(f"/api/projects/{self.project_id}/file-uploads"), params=params, headers=self._headers
        )
        response.raise_for_status()
        found: dict[str, str] = {}
        for entry in response.json():
            match = _UPLOADED_NAME.search(str(entry["file"]))
            if match:
                found.setdefault(match.group(1), "/data/" + str(entry["file"]))
        return found

    def on_server(self) -> dict[str, str]:
        """sha256 → task URL of every image this token has uploaded to the project (found by file name)."""
        return self._listing({"all": "true"})

    def _post(self, batch: list[tuple[str, Path]]) -> dict[str, str]:
        # Each file checked against its name: a damaged image stops the push, naming it, and is never uploaded.
        files = [
            (f"file{i}", (f"{sha}.png", checked(sha, path.read_bytes(), path), "image/png"))
            for i, (sha, path) in enumerate(batch)
        ]
        response = self.http.post(
            self._url(f"/api/projects/{self.project_id}/import"),
            params={"commit_to_project": "false"},
            files=files,
            headers=self._headers,
        )
        response.raise_for_status()
        ids = response.json().get("file_upload_ids") or []
        stored = self._listing({"ids": json.dumps(ids)})
        missing = [sha for sha, _path in batch if sha not in stored]
        if missing:
            raise WidespecError(f"Label Studio at {self.conn.url} stored no file for image {missing[0]}: push again")
        return stored

    def upload(self, images: Sequence[tuple[str, Path]]) -> Iterator[dict[str, str]]:
        """Upload (sha256, path) pairs; yields sha256 → task URL for each request as it finishes."""
        pending = iter(batches(images, self.batch))
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ls-upload")
        running: set[Future[dict[str, str]]] = set()
        try:
            for batch in pending:  # fill the pool, then one new request per finished one
                running.add(pool.submit(self._post, batch))
                if len(running) >= self.concurrency:
                    break
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    following = next(pending, None)
                    if following is not None:
                        running.add(pool.submit(self._post, following))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
