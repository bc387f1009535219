"""torch.distributed plumbing shared by the trainers and the tasks: one process, or ``torchrun`` ranks.

torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; gloo is used on CPU and nccl on GPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from benchmark.errors import InputError
from benchmark.restore import resolve_device
from models.amp import warn_if_emulated


@dataclass(frozen=True)
class Context:
    rank: int
    world: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str = "auto") -> Context:
    """Join the process group when started by torchrun; each GPU rank gets its own device."""
    torch_device = resolve_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Context(0, 1, torch_device)
    dist.init_process_group("nccl" if torch_device.type == "cuda" else "gloo")
    if torch_device.type == "cuda":
        torch_device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(torch_device)
    return Context(dist.get_rank(), dist.get_world_size(), torch_device)


def close(ctx: Context) -> None:
    if ctx.distributed:
        dist.destroy_process_group()


def shard(items: list, ctx: Context) -> list:
    """This rank's share: every ``world``-th item starting at ``rank`` (balanced, order kept within a rank)."""
    return items[ctx.rank::ctx.world]


def gather(obj, ctx: Context) -> list | None:
    """Every rank's ``obj`` on rank 0, in rank order (None on the other ranks); one process: ``[obj]``."""
    if not ctx.distributed:
        return [obj]
    gathered = [None] * ctx.world if ctx.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def agree_any(ctx: Context, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (a wall-time stop must happen at the same iteration)."""
    if not ctx.distributed:
        return flag
    value = torch.tensor([int(flag)], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def single_threaded_worker(_: int = 0) -> None:
    """A data worker's set-up: one torch and one OpenCV thread (the workers are the parallelism)."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


# Data workers are started with spawn, not fork: a fork while one of the trainer's threads (OpenMP, OpenCV, tqdm)
# holds a lock can leave a worker waiting on it forever (seen once in CI: two workers asleep on a futex).
WORKER_CONTEXT = "spawn"


def init_training(device: str, threads: int, batch: int, amp: str | None) -> Context:
    """``init`` for a trainer: set the CPU threads (0 keeps torch's default), check that the global ``batch``
    splits evenly over the ranks, and warn (rank 0) when ``amp`` would be emulated on this CPU."""
    ctx = init(device)
    if threads:
        torch.set_num_threads(threads)
    if batch % ctx.world:
        raise InputError(f"--batch {batch} is not divisible by the {ctx.world} ranks")
    if ctx.is_main:
        warn_if_emulated(ctx.device.type, amp)
    return ctx
