"""An HTTP client for huggingface_hub whose every request is bounded by a timeout and an overall deadline.

huggingface_hub's own client waits forever (`timeout=None`), so a Hub that accepts a connection and never answers
hangs a push. While `bounded_hub_client` is active, each request gets the smaller of the per-request timeout and
the time left before the deadline; once the deadline has passed, requests fail at once with HubDeadlineExceeded,
which huggingface_hub does not retry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import httpx2
from huggingface_hub import set_client_factory
from huggingface_hub.utils import _http as hf_http

T = TypeVar("T")
# Time the watchdog allows past the request deadline, so the request-level error (clearer) normally wins.
WATCHDOG_GRACE_S = 5.0


class HubDeadlineExceeded(Exception):
    """The overall deadline of a Hub operation passed (deliberately not an httpx error, so it is not retried)."""


class DeadlineTransport(httpx2.BaseTransport):
    """Wraps a transport: bounds each request by min(timeout, time left) and refuses requests past the deadline."""

    def __init__(self, inner: httpx2.BaseTransport, timeout_s: float, deadline: float) -> None:
        self.inner, self.timeout_s, self.deadline = inner, timeout_s, deadline

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise HubDeadlineExceeded(f"deadline passed before {request.method} {request.url.path}")
        limit = min(self.timeout_s, remaining)
        request.extensions["timeout"] = {"connect": limit, "read": limit, "write": limit, "pool": limit}
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@contextmanager
def bounded_hub_client(
    timeout_s: float, deadline_s: float, transport: httpx2.BaseTransport | None = None
) -> Iterator[None]:
    """Route huggingface_hub's requests through a DeadlineTransport for the duration of the block.

    `transport` is the network transport to wrap (a real HTTPTransport by default). The client factory that was
    installed before is put back afterwards.
    """
    deadline = time.monotonic() + deadline_s
    inner = transport if transport is not None else httpx2.HTTPTransport()
    previous = getattr(hf_http, "_GLOBAL_CLIENT_FACTORY", hf_http.default_client_factory)

    def factory() -> httpx2.Client:
        return httpx2.Client(
            transport=DeadlineTransport(inner, timeout_s, deadline),
            event_hooks={"request": [hf_http.hf_request_event_hook]},
            follow_redirects=True,
            timeout=timeout_s,
        )

    set_client_factory(factory)
    try:
        yield
    finally:
        set_client_factory(previous)


def run_with_deadline(work: Callable[[], T], seconds: float, what: str) -> T:
    """Run `work` in a daemon thread and give up after `seconds`.

    The per-request bound covers huggingface_hub's httpx requests; this covers everything else a publish may wait
    on (hf_xet uploads use their own network stack). On expiry the caller gets HubDeadlineExceeded; the abandoned
    thread is a daemon and ends with the process.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
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
