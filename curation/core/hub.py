"""The one Hugging Face Hub adapter: reachability, the local cache, and bounded requests, through public
`huggingface_hub` API only.

huggingface_hub's own client waits forever (`timeout=None`), so a Hub that accepts a connection and never answers
hangs a push. widespec installs its client factory once per process (`install_client`): every request gets a
timeout, and inside `bounded(timeout_s, deadline_s)` the smaller of that timeout and the time left before the
deadline; once the deadline has passed, requests fail at once with HubDeadlineExceeded (not retried). The bounds
live in a context variable, so concurrent operations never see each other's settings.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx2

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 60.0
# Time the watchdog allows past the request deadline, so the request-level error (clearer) normally wins.
WATCHDOG_GRACE_S = 5.0


class HubDeadlineExceeded(Exception):
    """The overall deadline of a Hub operation passed (deliberately not an httpx error, so it is not retried)."""


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def unreachable_reason(timeout_s: float) -> str | None:
    """None when the Hub answers at all (any HTTP status), else why not (asks the network, whatever the mode)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{endpoint()}/api/datasets?limit=1"), timeout=timeout_s):
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def reachable(timeout_s: float = 5.0) -> bool:
    """Whether huggingface_hub may and can reach the Hub (False at once in offline mode)."""
    return not offline() and unreachable_reason(timeout_s) is None


def cached_file(repo: str, filenames: Sequence[str], revision: str | None = None) -> Path | None:
    """The first of `filenames` of a Hub repo (at `revision`, default main) already in the local Hugging Face
    cache; its folder is named by the commit."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo, filename, revision=revision)
        if isinstance(found, str):
            return Path(found)
    return None


@dataclass(frozen=True)
class Bounds:
    timeout_s: float
    deadline: float | None
    transport: httpx2.BaseTransport | None


_network: httpx2.BaseTransport = httpx2.HTTPTransport()
_bounds: contextvars.ContextVar[Bounds | None] = contextvars.ContextVar("widespec_hub_bounds", default=None)
_installed = threading.Lock()


class BoundedTransport(httpx2.BaseTransport):
    """Bounds each request by min(timeout, time left) and refuses requests past the deadline or when offline."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        from huggingface_hub.errors import OfflineModeIsEnabled

        if offline():
            raise OfflineModeIsEnabled(f"cannot reach {request.url}: offline mode is enabled (HF_HUB_OFFLINE)")
        bounds = _bounds.get() or Bounds(DEFAULT_TIMEOUT_S, None, _network)
        transport = bounds.transport if bounds.transport is not None else _network
        limit = bounds.timeout_s
        if bounds.deadline is not None:
            remaining = bounds.deadline - time.monotonic()
            if remaining <= 0:
                raise HubDeadlineExceeded(f"deadline passed before {request.method} {request.url.path}")
            limit = min(limit, remaining)
        request.extensions["timeout"] = {"connect": limit, "read": limit, "write": limit, "pool": limit}
        return transport.handle_request(request)


def _client() -> httpx2.Client:
    return httpx2.Client(transport=BoundedTransport(), follow_redirects=True, timeout=DEFAULT_TIMEOUT_S)


def install_client() -> None:
    """Make huggingface_hub (and datasets through it) use widespec's bounded client in this process."""
    from huggingface_hub import set_client_factory

    with _installed:
        set_client_factory(_client)


_install_once = threading.Event()


def _ensure_installed() -> None:
    if not _install_once.is_set():
        install_client()
        _install_once.set()


@contextmanager
def network(transport: httpx2.BaseTransport) -> Iterator[None]:
    """Send every Hub request of this process through `transport` for the block (an in-process Hub in tests)."""
    global _network
    _ensure_installed()
    saved, _network = _network, transport
    try:
        yield
    finally:
        _network = saved


@contextmanager
def bounded(timeout_s: float, deadline_s: float, transport: httpx2.BaseTransport | None = None) -> Iterator[None]:
    """Bound every Hub request made in this context (and threads started with `run_with_deadline`)."""
    _ensure_installed()
    token = _bounds.set(Bounds(timeout_s, time.monotonic() + deadline_s, transport))
    try:
        yield
    finally:
        _bounds.reset(token)


def run_with_deadline(work: Callable[[], T], seconds: float, what: str) -> T:
    """Run `work` (in the caller's context) in a daemon thread and give up after `seconds`.

    The per-request bound covers huggingface_hub's httpx requests; this covers everything else a publish may wait
    on (hf_xet uploads use their own network stack). On expiry the caller gets HubDeadlineExceeded; the abandoned
    thread is a daemon and ends with the process.
    """
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(work)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"widespec-{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise HubDeadlineExceeded(f"{what} still running after {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return cast(T, outcome["value"])
