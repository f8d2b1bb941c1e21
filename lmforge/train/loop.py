"""The training loop of every stage (pretrain, adapt's phases, sft, dpo), top to bottom in one place.

A stage hands over a `Job`: how many steps, the learning rate at each step, how to fetch a
micro-batch by its global index, and the loss of a micro-batch. The loop does the rest the same
way for all of them: gradient accumulation, DDP/FSDP2 gradient sync on the last micro-batch only,
bf16 autocast, clipping, the optimizer step, metrics (averaged over micro-batches and ranks),
trackers, the progress bar, evaluation hooks, checkpoints, and SIGTERM -> checkpoint at the end
of the step -> stop.

Data sharding is a pure function of the position: one step consumes `grad_accum * world`
micro-batches, and micro-step m on rank r reads global micro-batch `consumed + m * world + r`.
So 2 processes with accumulation 1 read exactly what 1 process with accumulation 2 reads, and
a resumed run needs only the count of micro-batches consumed.
"""

import contextlib
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lmforge.train.distributed import Dist, any_across, sum_across


class Out(NamedTuple):
    """A micro-batch's loss (what is backpropagated) and what is logged about it."""

    loss: torch.Tensor
    stats: dict[str, Any]  # means over the micro-batch; logged as means over micro-batches and ranks
    tokens: int  # tokens the micro-batch trained on, padding excluded
    samples: int  # rows (windows, conversations, pairs)
    slots: int = 0  # token positions computed, padding included (0: no padding, = tokens)


@dataclass
class Position:
    """Where a run is: what a checkpoint stores and a resumed run starts from."""

    step: int = 0
    micro_batches: int = 0  # global micro-batches consumed, over all ranks
    tokens: int = 0  # tokens trained on, over all ranks


@dataclass
class Job:
    """What a stage hands the loop; everything else is the loop's."""

    name: str  # the stage, for the progress bar
    steps: int
    grad_accum: int
    lr_at: Callable[[int], float]  # step -> peak-relative learning rate (group "lr_scale" applies on top)
    batch: Callable[[int], Any]  # global micro-batch index -> a batch on this rank's device
    loss: Callable[[Any], Out]  # run under autocast
    clip: float | None = 1.0
    log_every: int = 10
    save_at: Callable[[int], bool] = lambda step: False  # steps that get a checkpoint
    save: Callable[[Position, dict], None] | None = None  # (position, last logged stats); collective
    evaluate: Callable[[int], dict | None] | None = None  # step -> a metrics row to log, or None
    flops_per_token: float | None = None  # logs model FLOP/s when known
    autocast_dtype: torch.dtype | None = None  # bf16 autocast, or None (fp32, or FSDP's own policy)


@dataclass
class Done:
    position: Position
    interrupted: bool  # stopped by SIGTERM: checkpointed at the step's end
    last: dict  # the last logged stats (loss, ...)
    seconds: float  # training time of this process (this run, not the killed one before it)
    tokens: int  # tokens trained on in this run, over all ranks, padding excluded
    samples: int
    padding_share: float  # of the token positions computed in this run, the share that was padding
    peak_memory: int  # bytes: this process's peak (CUDA: allocated by torch; CPU: resident set)


class StopFlag:
    """Turns SIGTERM (Slurm preemption, `kill`) into a checkpoint-and-exit at the next step's end."""

    def __init__(self):
        self.set = False
        with contextlib.suppress(ValueError):  # not the main thread: leave handlers alone
            signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.set = True


def run(job: Job, wrapped, optimizer, d: Dist, start: Position, log: Callable[..., None] | None) -> Done:
    """Train from `start` to `job.steps`; `log(**row)` (rank 0 only) receives every metrics row."""
    stop = StopFlag()
    pos = Position(start.step, start.micro_batches, start.tokens)
    params = [p for p in wrapped.parameters() if p.requires_grad]
    autocast = torch.autocast(
        d.device.type, dtype=job.autocast_dtype or torch.float32, enabled=bool(job.autocast_dtype)
    )
    # FSDP2 modules reduce gradients when asked to; DDP ones have no_sync()
    fsdp = hasattr(wrapped, "set_requires_gradient_sync")
    progress = Progress(
        TextColumn(job.name),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  {task.fields[tps]:,.0f} tok/s"),
        TimeRemainingColumn(),
        disable=not d.is_main,
        transient=True,
        auto_refresh=False,
    )  # redrawn at log steps: a 10 Hz refresh thread costs the loop GIL time
    task = progress.add_task("steps", total=job.steps, completed=pos.step, loss=float("nan"), tps=0.0)
    wrapped.train()
    started, interrupted, last = time.time(), False, {}
    window = {"tokens": 0, "samples": 0, "slots": 0, "seconds": 0.0}
    total = {"tokens": 0, "samples": 0, "slots": 0, "seconds": 0.0}
    with progress:
        while pos.step < job.steps:
            t0 = time.perf_counter()
            lr = job.lr_at(pos.step)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            sums: dict[str, torch.Tensor] = {}
            tokens = samples = slots = 0
            for micro in range(job.grad_accum):
                batch = job.batch(pos.micro_batches + micro * d.world + d.rank)
                sync_now = micro == job.grad_accum - 1
                if fsdp:
                    wrapped.set_requires_gradient_sync(sync_now)
                    sync = contextlib.nullcontext()
                else:
                    sync = contextlib.nullcontext() if sync_now or d.world == 1 else wrapped.no_sync()
                with sync:
                    with autocast:
                        out = job.loss(batch)
                    (out.loss / job.grad_accum).backward()
                for k, v in {"loss": out.loss, **out.stats}.items():
                    v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
                    sums[k] = sums.get(k, 0) + v.to(d.device) / job.grad_accum
                tokens, samples, slots = tokens + out.tokens, samples + out.samples, slots + (out.slots or out.tokens)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, job.clip or float("inf"))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            pos.step += 1
            pos.micro_batches += job.grad_accum * d.world
            window["tokens"] += tokens
            window["samples"] += samples
            window["slots"] += slots
            window["seconds"] += time.perf_counter() - t0

            at_log = pos.step % job.log_every == 0 or pos.step == job.steps
            # ranks agree on stopping at log steps only: an all-reduce every step would sync the GPU
            if d.world == 1 or at_log:
                interrupted = any_across(stop.set, d) and pos.step < job.steps
            if at_log or job.save_at(pos.step) or interrupted:
                # one collective for everything logged: stats are averaged, counts summed over ranks
                names = list(sums)
                counts = [torch.tensor(float(window[k])) for k in ("tokens", "samples", "slots")]
                packed = sum_across(torch.stack([sums[k].cpu() for k in names] + counts).to(d.device), d).cpu()
                last = {k: float(packed[i]) / d.world for i, k in enumerate(names)}
                done_tokens, done_samples, done_slots = (int(x) for x in packed[-3:])
                pos.tokens += done_tokens
                for k, v in (
                    ("tokens", done_tokens),
                    ("samples", done_samples),
                    ("slots", done_slots),
                    ("seconds", window["seconds"]),
                ):
                    total[k] += v
                tps = done_tokens / max(window["seconds"], 1e-9)
                norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
                row = {
                    "step": pos.step,
                    **last,
                    "lr": lr,
                    "grad_norm": float(norm),
                    "tokens": pos.tokens,
                    "tok_per_s": tps,
                    "samples_per_s": done_samples / max(window["seconds"], 1e-9),
                    "padding_share": 1 - done_tokens / max(done_slots, 1),
                    "elapsed_s": time.time() - started,
                }
                if job.flops_per_token:
                    row["model_flops_per_s"] = tps * job.flops_per_token
                if log:
                    log(**row)
                progress.update(task, completed=pos.step, loss=last["loss"], tps=tps, refresh=True)
                window = {"tokens": 0, "samples": 0, "slots": 0, "seconds": 0.0}
            if job.evaluate:
                row = job.evaluate(pos.step)
                if row and log:
                    log(step=pos.step, tokens=pos.tokens, **row)
            if job.save and (job.save_at(pos.step) or interrupted):
                job.save(pos, last)
            if interrupted:
                break
    if fsdp:
        wrapped.set_requires_gradient_sync(True)
    wrapped.eval()
    padding = 1 - total["tokens"] / max(total["slots"], 1)
    return Done(
        pos, interrupted, last, total["seconds"], total["tokens"], total["samples"], padding, peak_memory(d.device)
    )


def peak_memory(device: torch.device) -> int:
    """This process's peak memory in bytes so far: what torch allocated on a CUDA device, else the
    resident set (Linux reports ru_maxrss in KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
