"""The label-studio-sdk calls widespec makes: one project per round, local-files storage, bulk task import,
annotation export. Network and API failures become one-line errors that say what to do."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from annotation.server import Connection
from curation.core.errors import WidespecError

IMPORT_CHUNK = 1000  # tasks per import request (Label Studio's own advice for bulk imports)


@contextmanager
def api_errors(url: str) -> Iterator[None]:
    """Turn transport and API errors into WidespecError naming the server."""
    try:
        yield
    except httpx.TransportError as exc:
        raise WidespecError(
            f"Label Studio at {url} is not reachable ({type(exc).__name__}): start it with `widespec annotate serve` "
            "or check annotation.url; nothing was written"
        ) from None
    except (ApiError, httpx.HTTPStatusError) as exc:
        code, body = (
            (exc.status_code, exc.body) if isinstance(exc, ApiError) else (exc.response.status_code, exc.response.text)
        )
        if code in (401, 403):
            raise WidespecError(f"Label Studio at {url} refused the API token (HTTP {code})") from None
        raise WidespecError(f"Label Studio at {url} answered HTTP {code}: {str(body)[:300]}") from None


def open_client(conn: Connection, http: httpx.Client | None = None) -> LabelStudio:
    """An SDK client; pass `http` to share or instrument the HTTP client."""
    http = http or httpx.Client(timeout=300, follow_redirects=True)
    return LabelStudio(base_url=conn.url, api_key=conn.token, httpx_client=http, max_retries=0)


def check(ls: LabelStudio) -> int:
    """The id of the token's user (proves the server answers and accepts the token)."""
    return int(ls.users.whoami().id or 0)


def find_project(ls: LabelStudio, title: str) -> int | None:
    project: Any
    for project in ls.projects.list(title=title, page_size=100):
        if project.title == title and project.id is not None:
            return int(project.id)
    return None


def project_exists(ls: LabelStudio, project_id: int) -> bool:
    try:
        ls.projects.get(id=project_id)
    except ApiError as exc:
        if exc.status_code == 404:
            return False
        raise
    return True


def create_project(ls: LabelStudio, title: str, label_config: str, overlap: int, description: str) -> int:
    project = ls.projects.create(
        title=title,
        description=description,
        label_config=label_config,
        maximum_annotations=overlap,
        show_skip_button=True,
        enable_empty_annotation=False,
    )
    return int(project.id or 0)


def ensure_local_storage(ls: LabelStudio, project_id: int, path: str) -> int:
    """A local-files import storage granting the project access to `path` (no sync: tasks are imported)."""
    for storage in ls.import_storage.local.list(project=project_id):
        if storage.path == path:
            return int(storage.id)
    storage = ls.import_storage.local.create(project=project_id, path=path, title="widespec images")
    return int(storage.id or 0)


def task_pairs(ls: LabelStudio, project_id: int) -> dict[str, int]:
    """pair id → task id for every task already in the project."""
    found: dict[str, int] = {}
    task: Any
    for task in ls.tasks.list(project=project_id, fields="task_only", page_size=IMPORT_CHUNK):
        pair = (task.data or {}).get("pair_id")
        if pair and task.id is not None:
            found.setdefault(str(pair), int(task.id))
    return found


def import_tasks(ls: LabelStudio, project_id: int, payloads: Sequence[dict[str, Any]]) -> list[int]:
    """Import task data in one request (callers send chunks of IMPORT_CHUNK); returns the new task ids in order."""
    response: Any = ls.projects.import_tasks(id=project_id, request=list(payloads), return_task_ids=True)  # type: ignore[arg-type]
    return [int(i) for i in response.task_ids or []]


def export_annotated_tasks(ls: LabelStudio, project_id: int) -> list[dict[str, Any]]:
    """Every task with at least one annotation, with its annotations (one request)."""
    raw = b"".join(ls.projects.exports.download_sync(id=project_id, export_type="JSON", download_all_tasks=False))
    tasks: list[dict[str, Any]] = json.loads(raw or b"[]")
    return tasks


def invite_link(conn: Connection, http: httpx.Client | None = None) -> str:
    """The organization's sign-up link (`GET /api/invite`): whoever opens it makes an account in the organization."""
    with httpx.Client(timeout=30, follow_redirects=True) if http is None else nullcontext(http) as client:
        response = client.get(f"{conn.url}/api/invite", headers={"Authorization": f"Token {conn.token}"})
    response.raise_for_status()
    return conn.url + str(response.json()["invite_url"])


def user_emails(ls: LabelStudio) -> dict[int, str]:
    return {int(u.id): str(u.email or u.username or u.id) for u in ls.users.list() if u.id is not None}
