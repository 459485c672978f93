"""Data-parallel training under ``torchrun`` (DDP on the gloo backend), and the single-process
case as the same code path with a world of one.

``torchrun --nproc_per_node 2 -m manualgrad train --batch-size 64`` starts two processes; each
builds the same model from the same seed, DistributedSampler hands rank r the positions
r, r + W, r + 2W, … of the epoch's shuffled order, and each rank takes ``batch_size / W`` of
them per step. The union of the ranks' step-k batches is then exactly the single-process step-k
batch, and DDP's gradient all-reduce (an average over ranks of per-rank means) equals the mean
over the global batch — so the 2-process run follows the 1-process trajectory to float rounding
(when the training set size is a multiple of the batch size; otherwise the last, short batches
differ). Only rank 0 logs, writes checkpoints and prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler


@dataclass
class Context:
    """Where this process sits: rank, world size, and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def setup(device: str) -> Context:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1), else a world of one.

    Raises ``ValueError`` for ``--device cuda`` without CUDA."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Context(device=torch.device(device))
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    rank = dist.get_rank()
    if device == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return Context(rank, world_size, torch.device("cuda", local_rank))
    return Context(rank, world_size, torch.device("cpu"))


def cleanup(ctx: Context) -> None:
    """Leave the process group."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` in a distributed run, the model itself otherwise."""
    return DistributedDataParallel(model) if ctx.distributed else model


def sampler(num_samples: int, ctx: Context, seed: int) -> DistributedSampler:
    """Shuffled indices for this rank; ``set_epoch(e)`` reshuffles with seed + e, so the order
    of epoch e never depends on what ran before (which makes resuming exact)."""
    return DistributedSampler(
        range(num_samples), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed
    )


def local_batch_size(global_batch: int, ctx: Context) -> int:
    """Per-rank share of the global batch; ``ValueError`` if it does not divide evenly."""
    if global_batch % ctx.world_size:
        raise ValueError(
            f"--batch-size {global_batch} is not divisible by the {ctx.world_size} processes"
        )
    return global_batch // ctx.world_size


def all_sum(values: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Sum a tensor over ranks (identity in a world of one)."""
    if ctx.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_true(flag: bool, ctx: Context) -> bool:
    """True only if ``flag`` holds on every rank (so all ranks stop together)."""
    if not ctx.distributed:
        return flag
    value = torch.tensor([1 if flag else 0])
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())
