"""Where a training process runs: torchrun's process group, devices, per-rank RNG.

Under ``torchrun`` every rank joins one process group (NCCL on CUDA, gloo on CPU), pins its
CUDA device *before* joining (so NCCL's communicators land on the right GPU), and leaves it
at the end (:meth:`Dist.close`). Each rank's RNG streams are saved in the training state and
restored on resume, so ranks keep sampling different RoIs after a restart.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import torch

__all__ = ["Dist", "setup_distributed", "rng_state", "set_rng_state"]


@dataclass(frozen=True)
class Dist:
    """This process's rank among ``world`` and its torch device."""

    rank: int
    local_rank: int
    world: int
    device: torch.device
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def all_gather(self, obj) -> list:
        """``obj`` of every rank, in rank order (a one-item list without a process group)."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (so that all ranks act together)."""
        if not self.distributed:
            return bool(flag)
        t = torch.tensor([float(flag)], device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        return bool(t.item() > 0)

    def max(self, value: float) -> float:
        """The largest ``value`` over the ranks (so that all ranks use the same one)."""
        if not self.distributed:
            return float(value)
        t = torch.tensor([float(value)], device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return float(t.item())

    def close(self) -> None:
        """Leave the process group this process created."""
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def setup_distributed(device: str) -> Dist:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1; with CUDA each rank uses ``cuda:LOCAL_RANK``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if world > 1:
        import torch.distributed as dist

        cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
        if cuda:
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)  # before the process group: NCCL binds to the current device
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
            owns = True
    return Dist(rank, local_rank, world, torch.device(device), owns)


def rng_state(device: torch.device) -> dict:
    """This process's RNG streams (torch CPU, CUDA of ``device``, Python's ``random``)."""
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_random_state(state["python"]))
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def _as_random_state(s):
    """``random.setstate`` wants tuples; a state that went through a list-only format gets them back."""
    return tuple(tuple(x) if isinstance(x, list) else x for x in s)
