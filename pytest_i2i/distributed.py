"""Multi-process and multi-node evaluation on ``torch.distributed`` (one helper for every metric).

When a process group is initialised (by the user, or by :func:`init_from_env` when the CLI or
the plugin runs under ``torchrun``), every metric front-end computes only its rank's shard of
the images and merges the shards with collective ops, through one helper, :func:`map_shards`:

* shards are contiguous and aligned to ``batch_size`` (rank r gets batches
  ``[r·B/W, (r+1)·B/W)`` of the B batches), so each rank runs exactly the batches a single
  process would run;
* float64 sufficient statistics (:class:`~pytest_i2i.metrics.functional.frechet.FeatureStats`:
  n, Σx, Σxxᵀ) are summed with ``all_reduce`` — FID equals the single-process value up to the
  summation order (~1e-15 relative);
* everything else a shard returns (per-sample values, features for KID / IS / CMMD, notes) is
  gathered with ``all_gather_object`` and concatenated in rank order, which is the original
  order: per-sample values are bit-identical to a single process.

Every rank ends with the full result; only rank 0 should print or write (:func:`is_main`).
Bit-identity needs the same intra-op thread count per process as the single-process run
(CPU kernels round differently with different thread counts, ~1e-6 on features); ``torchrun``
sets ``OMP_NUM_THREADS=1`` per rank unless told otherwise.

Commands::

    # one machine, 2 processes (gloo on CPU, NCCL when --device cuda)
    torchrun --nproc-per-node 2 -m pytest_i2i.cli score real/ fake/ --json out.json
    # two machines, 4 GPUs each: run on every node with its --node-rank
    torchrun --nnodes 2 --nproc-per-node 4 --node-rank 0 --master-addr 10.0.0.1 --master-port 29500 \\
        -m pytest_i2i.cli score real/ fake/ --device cuda
    # the plugin: every rank runs the suite, metrics are sharded, rank 0 writes the report
    torchrun --nproc-per-node 2 -m pytest suites/model --i2i-report out/

Under ``torchrun`` each rank's device is ``cuda:LOCAL_RANK`` when CUDA is used. Under the
plugin only the metrics are sharded: every rank runs every test and generates every output (the
generator-output cache makes repeated runs cheap), and tests must call metrics in the same order
on every rank (they do: results are identical on all ranks, so every rank takes the same branches).
Per-rank start-up (importing torch, building the backbone) is paid once per process.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pytest_i2i.errors import I2IInputError

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _dist() -> Any:
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, ``(0, 1)`` without one."""
    dist = _dist()
    return (dist.get_rank(), dist.get_world_size()) if dist is not None else (0, 1)


def is_main() -> bool:
    """True on rank 0 (and in a single process): the process that prints and writes files."""
    return world()[0] == 0


@contextmanager
def torchrun_group(device: Any = None) -> Iterator[None]:
    """Inside: the process group of a ``torchrun`` launch (see :func:`init_from_env`), destroyed on
    exit if this call created it; a no-op in a single process. Used by every CLI command."""
    started = not world()[1] > 1 and init_from_env(device)
    try:
        yield
    finally:
        if started:
            import torch.distributed as dist

            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in TORCHRUN_ENV) and int(os.environ["WORLD_SIZE"]) > 1


def init_from_env(device: Any = None) -> bool:
    """Initialise the default process group from ``torchrun``'s environment variables.

    gloo for CPU devices, NCCL for CUDA (``cuda:LOCAL_RANK`` becomes the current device). Does
    nothing (returns ``False``) when not launched by ``torchrun`` with more than one process,
    and returns ``True`` when a group already exists. A group created here is destroyed when the
    process exits, if it still exists: a script that never calls ``destroy_process_group`` would
    otherwise leave gloo's threads to the interpreter's teardown, which aborted ranks at random
    with torch 2.14 ("terminate called without an active exception"; tests/test_distributed.py).

    Raises:
        I2IInputError: the group cannot be created (names the backend and the rendezvous).
    """
    import torch
    import torch.distributed as dist

    if _dist() is not None:
        return True
    if not launched_by_torchrun():
        return False
    cuda = device is not None and torch.device(device).type == "cuda"
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    try:
        dist.init_process_group(backend=backend)
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError / DistNetworkError / ValueError
        raise I2IInputError(
            f"cannot initialise torch.distributed ({backend}) at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
            f"as rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}: {type(e).__name__}: {str(e)[:300]}"
        ) from None
    atexit.register(_destroy_at_exit)
    return True


def _destroy_at_exit() -> None:
    dist = _dist()
    if dist is not None:
        dist.destroy_process_group()


def rank_device(device: Any) -> Any:
    """``device`` for this rank: a bare ``"cuda"`` becomes ``cuda:LOCAL_RANK`` under torchrun."""
    if device is not None and str(device) == "cuda" and _dist() is not None and "LOCAL_RANK" in os.environ:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return device


def shard_range(n: int, batch_size: int, rank: int | None = None, world_size: int | None = None) -> range:
    """This rank's contiguous share of ``range(n)``, aligned to ``batch_size``.

    Example:
        >>> shard_range(10, 2, rank=0, world_size=2), shard_range(10, 2, rank=1, world_size=2)
        (range(0, 4), range(4, 10))
    """
    if batch_size < 1:
        raise I2IInputError(f"batch_size must be >= 1, got {batch_size}")
    r, w = world()
    r = r if rank is None else rank
    w = w if world_size is None else world_size
    batches = -(-n // batch_size)
    lo, hi = r * batches // w, (r + 1) * batches // w
    return range(min(lo * batch_size, n), min(hi * batch_size, n))


@dataclass(frozen=True)
class _StatsHeader:
    dim: int
    meta: dict


def map_shards(n: int, batch_size: int, compute: Callable[[range], Any]) -> Any:
    """``compute`` over all of ``range(n)``, split across the ranks of the process group.

    ``compute(indices)`` gets a contiguous ``range`` of sample indices (this rank's shard, see
    :func:`shard_range`; all of them in a single process) and returns the shard's part: a
    :class:`FeatureStats` (summed over ranks with ``all_reduce``), or a tensor / array of rows,
    a list, or a dict / tuple of those (concatenated in rank order, which is sample order).
    Ranks with an empty shard (fewer batches than ranks) do not call ``compute``. Every rank
    returns the merged result.

    An exception in ``compute`` on any rank is raised on every rank (none waits forever).

    Raises:
        I2IInputError: ranks returned different kinds of parts (e.g. a front-end that is not
            called in the same order on every rank).
    """
    from pytest_i2i.metrics.functional.frechet import FeatureStats

    rank, size = world()
    if size == 1:
        return compute(range(n))
    indices = shard_range(n, batch_size)
    try:
        local = compute(indices) if len(indices) else None
    except Exception as e:  # noqa: BLE001 - raised on every rank below, so no rank waits forever
        local = _Failed(e if _picklable(e) else I2IInputError(f"{type(e).__name__}: {e}"), rank)
    dist = _dist()
    parts: list[Any] = [None] * size
    dist.all_gather_object(parts, _StatsHeader(local.dim, local.meta) if isinstance(local, FeatureStats) else local)
    failed = [p for p in parts if isinstance(p, _Failed)]
    if failed:
        if isinstance(local, _Failed):
            raise local.error
        raise failed[0].error
    present = [p for p in parts if p is not None]
    if not present:
        raise I2IInputError(f"no rank computed anything for {n} samples")
    if isinstance(present[0], _StatsHeader):
        if not all(isinstance(p, _StatsHeader) and p.dim == present[0].dim for p in present):
            raise I2IInputError("ranks returned different kinds of results: metric calls are out of step across ranks")
        return _all_reduce_stats(local if local is not None else FeatureStats(present[0].dim), present[0].meta)
    return _concat(present)


@dataclass
class _Failed:
    error: Exception
    rank: int


def _picklable(obj: Any) -> bool:
    import pickle

    try:
        pickle.loads(pickle.dumps(obj))
    except Exception:  # noqa: BLE001
        return False
    return True


def _all_reduce_stats(stats: Any, meta: dict) -> Any:
    import numpy as np
    import torch

    from pytest_i2i.metrics.functional.frechet import FeatureStats

    dist = _dist()
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    d = stats.dim
    flat = torch.cat([torch.tensor([float(stats.n)], dtype=torch.float64),
                      torch.from_numpy(np.ascontiguousarray(stats.total)),
                      torch.from_numpy(np.ascontiguousarray(stats.outer)).flatten()]).to(device)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat = flat.cpu().numpy()
    return FeatureStats(d, int(round(flat[0])), flat[1:1 + d].copy(), flat[1 + d:].reshape(d, d).copy(), dict(meta))


def _concat(parts: list[Any]) -> Any:
    import numpy as np
    import torch

    first = parts[0]
    if not all(type(p) is type(first) for p in parts):
        raise I2IInputError("ranks returned different kinds of results: metric calls are out of step across ranks")
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    if isinstance(first, list):
        return [x for p in parts for x in p]
    if isinstance(first, dict):
        return {k: _concat([p[k] for p in parts]) for k in first}
    if isinstance(first, tuple):
        return tuple(_concat([p[i] for p in parts]) for i in range(len(first)))
    raise I2IInputError(f"cannot merge shard results of type {type(first).__name__} across ranks")


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    dist = _dist()
    if dist is not None:
        dist.barrier()
