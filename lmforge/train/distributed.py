"""torchrun integration: process group setup, DDP / FSDP2 wrapping, small collectives.

lmforge never starts processes itself: `torchrun` (or Slurm running torchrun) does, and this
module reads the environment it sets (RANK, WORLD_SIZE, LOCAL_RANK). gloo on CPU, nccl on GPU.
"""

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

WAIT = timedelta(hours=2)


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(threads: int | None = None) -> Dist:
    """Join torchrun's process group (once per process; later stages reuse it). CPU processes share
    the cores: each gets its part of them unless `threads` says otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if threads:
        torch.set_num_threads(threads)
    elif world > 1 and not cuda and not dist.is_initialized():
        torch.set_num_threads(max(1, torch.get_num_threads() // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    if world > 1 and not dist.is_initialized():
        # rank 0 alone measures before and after training while the others wait: allow it time
        dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None, timeout=WAIT)
    return Dist(rank, world, local_rank, device)


def teardown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, d: Dist, fsdp: bool, bf16: bool, checkpointing: bool = False) -> torch.nn.Module:
    """FSDP2 (`fully_shard`, one unit per decoder layer) when asked, else DDP when world > 1; with
    `checkpointing`, each decoder layer recomputes its activations in the backward pass (set before
    sharding, so FSDP2 wraps the checkpointed layers)."""
    if checkpointing:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model  # under a peft wrapper
        base.activation_checkpointing_enable()
    if fsdp:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if bf16
            else MixedPrecisionPolicy()
        )
        for layer in decoder_layers(model):
            fully_shard(layer, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        return model
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    return model


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks, wherever the model (or a peft wrapper around it) keeps them."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.endswith("layers"):
            return list(module)
    raise ValueError(f"{type(model).__name__}: no decoder layers found to shard")


def sum_across(value: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world > 1:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def mean_across(value: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world > 1:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= d.world
    return value


def any_across(flag: bool, d: Dist) -> bool:
    """True on every rank when any rank has the flag set (used to agree on stopping)."""
    if d.world == 1:
        return flag
    t = torch.tensor([int(flag)], device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()
