"""The Ray backend of the one executor: a stage's compute runs on Ray actors, the driver writes.

Each actor enters the stage's compute factory once (loading its model) with `executor.cpu_threads` torch threads
and turns chunks of units into the same `Output`s the local backend makes; outputs (records, image bytes) stream
back to the driver, which commits them batch by batch exactly as for a local run. Workers need no shared
filesystem with the driver's workspace: the units carry their inputs (a stage whose units name workspace files
gives `Work.portable`, applied here chunk by chunk, as each chunk is sent). At most two chunks per actor are in
flight (one computing, the next waiting beside it), so the driver holds a window of chunks and never the whole
run's inputs. Only pending units are dispatched, so a killed driver resumes where it stopped.
"""

from __future__ import annotations

import pickle
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

from curation.core.errors import WidespecError
from curation.core.settings import ExecutorSettings
from curation.core.stage import ComputeFactory, Output
from curation.core.threads import cpu_threads

IN_FLIGHT_PER_ACTOR = 2  # chunks sent to one actor and not yet back: it never waits for the driver's next one
RESTARTS = 3  # times an actor whose process died (out of memory, a lost node) is started again, its chunk retried


class ComputeActor:
    """A Ray actor: the stage's compute, opened once, applied to one chunk of units per call."""

    def __init__(self, factory: bytes, threads: int) -> None:
        self._open = ExitStack()
        self._compute = self._open.enter_context(pickle.loads(factory)())
        self._open.enter_context(cpu_threads(threads))

    def run(self, chunk: bytes) -> bytes:
        return pickle.dumps(list(self._compute.run(pickle.loads(chunk))))

    def close(self) -> None:
        self._open.close()


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


def pool_size(settings: ExecutorSettings, cluster: dict[str, Any], chunks: int) -> tuple[int, float]:
    """(actors, GPUs each): `executor.workers` (0: one per GPU, or one per two CPUs without GPUs), never more
    than there are chunks, nor than the cluster can place (an actor that waits for a CPU or GPU that never frees
    would hold its chunks forever)."""
    gpus = settings.gpus_per_worker if cluster["gpus"] else 0
    wanted = settings.workers or (int(cluster["gpus"] // gpus) if gpus else max(1, int(cluster["cpus"] // 2)))
    placeable = [wanted, chunks]
    if gpus:
        placeable.append(int(cluster["gpus"] // gpus))
    if settings.cpus_per_worker:
        placeable.append(int(cluster["cpus"] // settings.cpus_per_worker))
    return max(1, min(placeable)), gpus


def run_on_ray(
    factory: ComputeFactory,
    units: Sequence[Any],
    settings: ExecutorSettings,
    cluster: dict[str, Any],
    portable: Portable | None = None,
) -> Iterator[Output]:
    """The outputs of `factory`'s compute over `units`, computed on Ray actors of the `cluster` that `connect`
    joined, in the order they finish. A chunk is made portable (its images read) only when it is sent, and at
    most `IN_FLIGHT_PER_ACTOR` chunks per actor are out at once: the driver's memory does not grow with the run."""
    import ray

    if not units:
        return
    size = settings.batch_size
    starts = iter(range(0, len(units), size))
    actors_wanted, gpus = pool_size(settings, cluster, -(-len(units) // size))
    actor_class: Any = ray.remote(ComputeActor)
    remote = actor_class.options(
        num_cpus=settings.cpus_per_worker,
        num_gpus=gpus,
        max_restarts=RESTARTS,
        max_task_retries=RESTARTS,
    )
    carry = portable or list
    opened = pickle.dumps(factory)
    actors: list[Any] = [remote.remote(opened, settings.cpu_threads) for _ in range(actors_wanted)]
    in_flight: dict[Any, Any] = {}  # the result of a chunk sent → the actor computing it

    def send(actor: Any) -> None:
        start = next(starts, None)
        if start is not None:
            chunk = pickle.dumps(list(carry(units[start : start + size])))
            in_flight[actor.run.remote(chunk)] = actor

    try:
        for _ in range(IN_FLIGHT_PER_ACTOR):
            for actor in actors:
                send(actor)
        while in_flight:
            (done,), _ = ray.wait(list(in_flight), num_returns=1)
            actor = in_flight.pop(done)
            outputs = ray.get(done)
            send(actor)  # before the driver commits: the actor computes meanwhile
            yield from pickle.loads(outputs)
        ray.get([actor.close.remote() for actor in actors])
    finally:
        for actor in actors:
            ray.kill(actor)
