"""Which GGUF type each tensor gets, and its bytes in that type.

The file types people download (Q4_K_M, Q5_K_M, Q6_K) mix types by tensor, as llama.cpp's
`llama-quantize` does: the output matrix (or the embedding, when it doubles as the output) and,
for the _M types, the value projections and the MLP down projections of the first and last
eighth of the layers and of every third layer between them get more bits, because those are the
tensors whose error costs the most perplexity. A matrix whose rows do not split into 256-value
super-blocks falls back to the nearest 32-value type (Q5_0, Q5_1, Q8_0), then to f16, again as
llama.cpp does.

The bytes come from llama.cpp's own quantizer (`ggml_quantize_chunk` in the xllamacpp wheel's
build of ggml) where it is there, else from the `gguf` package, which implements the 32-value
types only; a K-quant without llama.cpp is a one-line error naming what is missing.
"""

import ctypes
import re
from functools import cache

import numpy as np

from lmforge.errors import ConfigError

TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k")
_K_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}  # llama.cpp's, for rows of other widths


def file_type(kind: str):
    import gguf

    F = gguf.LlamaFileType
    return {
        "f32": F.ALL_F32,
        "f16": F.MOSTLY_F16,
        "bf16": F.MOSTLY_BF16,
        "q8_0": F.MOSTLY_Q8_0,
        "q4_0": F.MOSTLY_Q4_0,
        "q4_k_m": F.MOSTLY_Q4_K_M,
        "q5_k_m": F.MOSTLY_Q5_K_M,
        "q6_k": F.MOSTLY_Q6_K,
    }[kind]


def _more_bits(i: int, n: int) -> bool:
    """llama.cpp's pick of layers that get the larger type in _M files."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_type(kind: str, name: str, shape: tuple[int, ...], layers: int, has_output: bool):
    """The GGML type of tensor `name` (llama.cpp's name) in a `kind` file."""
    import gguf

    Q = gguf.GGMLQuantizationType
    if len(shape) == 1 or kind == "f32":  # norms, biases, rope factors: always f32
        return Q.F32
    if kind in ("f16", "bf16"):
        return Q[kind.upper()]
    block = re.match(r"blk\.(\d+)\.(\w+)\.weight$", name)
    layer, part = (int(block[1]), block[2]) if block else (-1, "")
    is_output = name == "output.weight" or (not has_output and name == "token_embd.weight")
    if kind == "q8_0":
        want = "Q8_0"
    elif kind == "q4_0":
        want = "Q8_0" if is_output else "Q4_0"  # the output matrix is the most sensitive
    elif kind == "q6_k" or is_output:
        want = "Q6_K"
    else:
        base, more = ("Q4_K", "Q6_K") if kind == "q4_k_m" else ("Q5_K", "Q6_K")
        if part in ("attn_v", "ffn_down") and _more_bits(layer, layers):
            want = more
        elif part == "attn_qkv":
            want = "Q5_K" if kind == "q4_k_m" else "Q6_K"
        else:
            want = base
    width = shape[-1]
    if want in _K_FALLBACK and width % 256:
        want = _K_FALLBACK[want]
    if width % 32:
        return Q.F16
    return Q[want]


@cache
def _ggml_quantize_chunk():
    """llama.cpp's quantizer from the xllamacpp wheel's shared library, or None."""
    try:
        from xllamacpp import xllamacpp as native
    except ImportError:
        return None
    try:
        fn = ctypes.CDLL(native.__file__).ggml_quantize_chunk
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_int64] * 3 + [ctypes.c_void_p]
    return fn


def encode(x: np.ndarray, qtype) -> np.ndarray:
    """`x` in GGML type `qtype`: a float array for f32/f16/bf16, else the quantized bytes [rows, row_bytes]."""
    import gguf

    Q = gguf.GGMLQuantizationType
    if qtype == Q.F32:
        return x.astype(np.float32)
    if qtype == Q.F16:
        return x.astype(np.float16)
    if qtype == Q.BF16:
        return gguf.quants.quantize(x.astype(np.float32), qtype)
    quantize = _ggml_quantize_chunk()
    if quantize is None:
        try:
            return gguf.quants.quantize(x.astype(np.float32), qtype)
        except NotImplementedError:
            raise ConfigError(
                f"GGUF export: {qtype.name} needs llama.cpp's quantizer (pip install xllamacpp); "
                "the gguf package writes f32, f16, bf16, q8_0 and q4_0 only"
            ) from None
    src = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, x.shape[-1])
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rows, width = src.shape
    if width % block:  # ggml would write past the buffer
        raise ConfigError(f"GGUF export: rows of {width} values do not split into {qtype.name}'s blocks of {block}")
    out = np.empty((rows, width // block * size), dtype=np.uint8)
    written = quantize(int(qtype), src.ctypes.data, out.ctypes.data, 0, rows, width, None)
    if written != out.size:
        raise ConfigError(f"GGUF export: llama.cpp's quantizer wrote {written} bytes for {qtype.name}, not {out.size}")
    return out.reshape(*x.shape[:-1], out.shape[-1])
