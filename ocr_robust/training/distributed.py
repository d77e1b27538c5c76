"""Training on several processes started by ``torchrun``: the process group, each rank's
device and seed, the learning-rate scaling rule, and the collectives the Trainer needs.

``torchrun --nproc_per_node N -m ocr_robust train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in each process; :func:`init_from_env` joins them into one process group
(nccl on CUDA, gloo on the CPU). Without those variables, or with one process, nothing
changes: rank 0 of a world of 1, no collective is ever called.

How the replicas stay equal (data-parallel training, as ``DistributedDataParallel``):

- at the start every parameter and buffer is broadcast from rank 0 (:func:`broadcast_state`);
- a mode's step runs on each rank's own batch with no communication at all: the realtime
  adversary's inner steps, PGD's crafting steps and every intermediate backward accumulate
  into the local ``.grad`` (DDP's ``no_sync``);
- once per optimizer step, :meth:`World.average` all-reduces, in ONE flat buffer, the
  accumulated gradients, the BatchNorm running statistics and the step's loss, and divides
  by the world size; every rank then clips and steps the same gradient.

Why not ``DistributedDataParallel`` itself: DDP decides at each *forward* whether the next
backward all-reduces, while the realtime adversary learns only after a forward whether it
was the batch's last inner step, and ranks run different numbers of inner steps (lines stop
on success). DDP would all-reduce at every inner step and deadlock on the ranks' differing
counts; the one explicit all-reduce per optimizer step is what DDP with ``no_sync`` on the
inner steps computes, for every mode alike.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["World", "init_from_env", "close", "world", "local_device", "broadcast_state", "LR_SCALING", "scaled_lr",
           "rank_seed"]

LR_SCALING = ("sqrt", "linear", "none")


def scaled_lr(lr: float, world_size: int, rule: str) -> float:
    """The peak learning rate of a run on ``world_size`` processes, each with the config's
    per-rank batch: ``lr`` is the rate for one process. ``sqrt`` (the default: the rule for
    Adam-type optimizers, Malladi et al. 2022, "On the SDEs and Scaling Rules for Adaptive
    Gradient Algorithms") multiplies it by sqrt(world size), ``linear`` (Goyal et al. 2017,
    for SGD) by the world size, ``none`` keeps it."""
    if rule not in LR_SCALING:
        raise ValueError(f"lr_scaling: expected one of {', '.join(LR_SCALING)}, got {rule!r}")
    return lr * {"sqrt": math.sqrt(world_size), "linear": float(world_size), "none": 1.0}[rule]


def rank_seed(seed: int, rank: int) -> int:
    """Each rank's seed for what must differ between ranks (augmentation, dropout, the
    adversary's draws); rank 0's is the run's seed, so one process trains as before."""
    return seed + 1_000_003 * rank


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` processes, ``local_rank`` on its
    machine. ``size == 1``: a single process, and every method is a no-op."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes the run folder and prints."""
        return self.rank == 0

    def _device(self) -> torch.device:
        """Where the collectives' tensors live: the GPU for nccl, the CPU for gloo."""
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def average(self, tensors: list[torch.Tensor]) -> None:
        """All-reduce ``tensors`` in place to their mean over the ranks, in one flat buffer
        (one collective, whatever their number). Tensors of one dtype are packed together."""
        if self.size == 1 or not tensors:
            return
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        dev = self._device()
        for group in by_dtype.values():
            flat = torch.cat([t.detach().reshape(-1).to(dev) for t in group])
            dist.all_reduce(flat)
            flat /= self.size
            k = 0
            for t in group:
                n = t.numel()
                t.copy_(flat[k:k + n].view_as(t))
                k += n

    def max_int(self, value: int) -> int:
        """The largest of the ranks' ``value`` (every rank gets it): a stop any rank asks for."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.long, device=self._device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the ranks (a new tensor on ``t``'s device)."""
        if self.size == 1:
            return t
        out = t.to(self._device())
        dist.all_reduce(out)
        return out.to(t.device)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable, from this run's own processes), in rank order."""
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def world() -> World:
    """This process's :class:`World`: from the process group when one is set up, else a
    single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def init_from_env(device: str = "auto") -> World:
    """Join the process group ``torchrun`` describes in the environment (``WORLD_SIZE`` > 1):
    nccl where this rank trains on a GPU (``cuda:LOCAL_RANK``), gloo on the CPU. A single
    process (no ``WORLD_SIZE``, or 1) gets ``World()`` and no process group."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        return world()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    else:
        dist.init_process_group("gloo")
    return world()


def local_device(device: str, w: World) -> torch.device:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` on a GPU machine (``auto`` or
    ``cuda``), else the config's."""
    from ..runs import pick_device

    d = pick_device(device)
    if w.size > 1 and d.type == "cuda" and d.index is None:
        return torch.device("cuda", w.local_rank)
    return d


def broadcast_state(module: torch.nn.Module, w: World) -> None:
    """Rank 0's parameters and buffers on every rank (the start DDP gives its replicas)."""
    if w.size == 1:
        return
    dev = w._device()
    with torch.no_grad():
        for t in module.state_dict().values():
            buf = t.to(dev)
            dist.broadcast(buf, src=0)
            t.copy_(buf.to(t.device))


def close() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
