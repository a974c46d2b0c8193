"""How many CPU threads torch computes with: one number for every executor, because a CPU result depends on it.

A matrix product or a convolution on the CPU splits its sums over its threads, and another split sums in another
order: the same model, seed and prompt give other bytes with another thread count. Left to itself, torch takes
one thread per core in a plain process and one per CPU a Ray actor holds (Ray sets OMP_NUM_THREADS), so the
executor sets `executor.cpu_threads` wherever a compute runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """Compute with `count` torch threads inside the block, the process's own count restored after it. Enter it
    once the compute is open (its model loaded): a compute that has not imported torch needs no threads set."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
