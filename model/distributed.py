"""Data-parallel training under ``torchrun``: NCCL on GPUs, gloo on CPU.

Every rank builds the same global batch from the same seeded order and takes the slice
``batch[rank::world]``. Each rank's loss is its share of the global batch's sum divided by the
global normaliser and multiplied by the world size, so DistributedDataParallel's gradient average
equals the gradient of the single-process loss on the whole batch (to rounding). Evaluation is
sharded the same way and gathered on every rank, so all ranks agree on validation scores (and on
the learning-rate schedule that follows them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str) -> Context:
    """Join the process group when launched by torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(device=device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Context(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


def teardown(context: Context) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    if context.active:
        dist.barrier()


def gather(context: Context, obj: object) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not context.active:
        return [obj]
    objects: list = [None] * context.world
    dist.all_gather_object(objects, obj)
    return objects


def all_sum(context: Context, values: list[float]) -> list[float]:
    if not context.active:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()
