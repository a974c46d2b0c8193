"""The Ray backend of the one executor: a stage's compute runs on Ray Data actors, the driver writes.

Each actor enters the stage's compute factory once (loading its model) with `executor.cpu_threads` torch threads
and turns chunks of units into the same
`Output`s the local backend makes; outputs (records, image bytes) stream back to the driver, which commits them
batch by batch exactly as for a local run. Workers need no shared filesystem with the driver's workspace: the
units carry their inputs (a stage whose units name workspace files gives `Work.portable`, applied here chunk by
chunk). Only pending units are dispatched, so a killed driver resumes where it stopped.
"""

from __future__ import annotations

import logging
import pickle
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from curation.core.errors import WidespecError
from curation.core.settings import ExecutorSettings
from curation.core.stage import ComputeFactory, Output
from curation.core.threads import cpu_threads


class ComputeActor:
    """A Ray Data actor: the stage's compute, opened once, applied to one chunk of units per batch."""

    def __init__(self, factory: bytes, threads: int) -> None:
        self._context = pickle.loads(factory)()
        self._compute = self._context.__enter__()
        self._threads = cpu_threads(threads)
        self._threads.__enter__()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        outputs = []
        for chunk in batch["units"]:
            outputs.append(pickle.dumps(list(self._compute.run(pickle.loads(chunk)))))
        return {"outputs": outputs}

    def __del__(self) -> None:
        context = getattr(self, "_context", None)
        if context is not None:
            context.__exit__(None, None, None)


def _reachable(address: str, timeout_s: float) -> str | None:
    """Why a `host:port` or `ray://host:port` address cannot be reached (None when a TCP connection opens)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return None  # "auto" and the like: ray.init itself says whether a cluster is there
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def address_kind(address: str) -> str:
    """What `executor.address` names, without the address itself: a Ray started here, the cluster this machine
    runs (`auto`), a Ray Client (`ray://`) or a head's GCS address."""
    if not address:
        return "local"
    if address == "auto":
        return "auto"
    return "ray client" if address.startswith("ray://") else "gcs address"


def connect(settings: ExecutorSettings) -> dict[str, Any]:
    """Join (or start) the cluster, failing within `connect_timeout_s` when its address does not answer;
    returns what the run records of it: nodes, CPUs, GPUs, Ray's version and the kind of address."""
    import ray

    if not ray.is_initialized():
        where = settings.address or "a local Ray"
        reason = _reachable(settings.address, settings.connect_timeout_s) if settings.address else None
        if reason is None:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            if settings.address:
                kwargs["address"] = settings.address
            try:
                ray.init(**kwargs)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        if reason is not None:
            raise WidespecError(
                f"executor.address = {where!r}: cannot reach the Ray cluster within "
                f"{settings.connect_timeout_s:g} s ({reason}); start it with `ray start --head` or fix the address"
            )
    resources = ray.cluster_resources()
    return {
        "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
        "cpus": float(resources.get("CPU", 0)),
        "gpus": float(resources.get("GPU", 0)),
        "ray": ray.__version__,
        "address": address_kind(settings.address),
    }


Portable = Callable[[Sequence[Any]], Sequence[Any]]


def chunks(units: Sequence[Any], size: int, portable: Portable | None = None) -> list[bytes]:
    """The units in order, `size` at a time, made `portable` (their inputs inline) and pickled: what travels."""
    carry = portable or list
    return [pickle.dumps(list(carry(units[i : i + size]))) for i in range(0, len(units), size)]


def run_on_ray(
    factory: ComputeFactory,
    units: Sequence[Any],
    settings: ExecutorSettings,
    cluster: dict[str, Any],
    portable: Portable | None = None,
) -> Iterator[Output]:
    """The outputs of `factory`'s compute over `units`, computed on Ray actors of the `cluster` that `connect`
    joined, in the order they finish."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the executor's own bar counts what the driver commits
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes and deprecations are not the curator's
    gpus = settings.gpus_per_worker if cluster["gpus"] else 0
    workers = settings.workers or (
        int(cluster["gpus"] // max(gpus, 1e-9)) if gpus else max(1, int(cluster["cpus"] // 2))
    )
    items = [{"units": chunk} for chunk in chunks(units, settings.batch_size, portable)]
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        ComputeActor,
        fn_constructor_kwargs={"factory": pickle.dumps(factory), "threads": settings.cpu_threads},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=max(1, min(workers, len(items)))),
        num_gpus=gpus,
        num_cpus=settings.cpus_per_worker,
    )
    for row in dataset.iter_rows():
        yield from pickle.loads(row["outputs"])
