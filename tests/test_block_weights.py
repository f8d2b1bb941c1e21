"""The lean decode step's block kernel: a GGUF model's dequantised fp32 weights kept as their 4/8-bit
blocks (found only when they rebuild every weight bit for bit) and multiplied in fp32."""

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, quants

from lmforge.engine import block_weights, llama_step
from lmforge.engine.kv_buffer import KVBuffer
from lmforge.export.quantize import encode
from tests.tiny_models import tiny_llama

pytestmark = pytest.mark.skipif(block_weights.kernel() is None, reason="needs x86-64 with AVX2+FMA and a C compiler")


def gguf_roundtrip(w: torch.Tensor, kind: str) -> torch.Tensor:
    """What transformers hands lmforge for a GGUF tensor: ggml's quantiser (llama.cpp's own where
    xllamacpp is installed, which the K-quants need), then its dequantiser."""
    t = GGMLQuantizationType[kind]
    return torch.from_numpy(quants.dequantize(encode(w.numpy(), t), t).astype(np.float32).reshape(w.shape))


def rebuild(b: block_weights.Blocks) -> torch.Tensor:
    codes = b.codes.view(b.shape[0], -1, 4 * b.bits)
    if b.bits == 4:
        codes = torch.cat([codes & 15, codes >> 4], -1)
    return (b.scale[..., None] * codes.float() + b.offset[..., None]).reshape(b.shape)


@pytest.mark.parametrize(
    "kind,bits,width",
    [
        ("Q4_0", 4, 96),
        ("Q4_1", 4, 96),
        ("Q8_0", 8, 96),
        ("Q5_0", 8, 96),
        ("Q5_1", 8, 96),
        ("Q4_K", 4, 512),
        ("Q5_K", 8, 512),
    ],
)
def test_gguf_blocks_are_found_and_rebuild_every_weight_exactly(kind, bits, width):
    torch.manual_seed(0)
    w = gguf_roundtrip(torch.randn(300, width) * torch.rand(300, 1), kind)
    b = block_weights.find_blocks(w)
    assert b is not None and b.bits == bits
    assert torch.equal(rebuild(b), w)
    assert b.nbytes <= w.numel() * (bits + 2) / 8  # codes + an fp32 scale and offset per 32 weights
    for rows in (1, 3, 16):
        x = torch.randn(rows, width)
        assert torch.allclose(block_weights.block_linear(x, b), x @ w.T, rtol=1e-5, atol=1e-4)  # sums in another order


def test_weights_that_are_not_blocks_stay_fp32():
    torch.manual_seed(0)
    assert block_weights.find_blocks(torch.randn(64, 64)) is None  # trained-looking fp32
    w = gguf_roundtrip(torch.randn(64, 64), "Q4_1")
    w[40, 7] = torch.nextafter(w[40, 7], torch.tensor(1.0))  # one weight one ulp off: no longer exact
    assert block_weights.find_blocks(w) is None
    assert block_weights.find_blocks(gguf_roundtrip(torch.randn(8, 64), "Q8_0").bfloat16()) is None
    assert block_weights.find_blocks(torch.zeros(8, 40)) is None  # rows not a whole number of blocks
    assert block_weights.find_blocks(gguf_roundtrip(torch.randn(16, 256), "Q6_K")) is None  # 16 weights a scale


def test_lean_step_reads_a_gguf_quantised_model_like_its_forward():
    """A Llama whose weights went through GGUF Q4_1 (layers) and Q8_0 (tied embedding/lm_head), as a
    model loaded from a GGUF file has them: every linear is read from blocks, and one decode step
    for one row and for three rows gives transformers' own next-token logits."""
    torch.manual_seed(0)
    model = tiny_llama(vocab=96).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(gguf_roundtrip(p, "Q8_0" if "embed" in name else "Q4_1"))
    project = llama_step.projection_for(model)
    assert project.blocks == 1 + 2 * 7  # lm_head and every layer's seven
    ids = torch.randint(0, 96, (3, 9))
    with torch.inference_mode():
        for batch in (ids[:1], ids):
            prefill = model(input_ids=batch[:, :-1], use_cache=True)
            want = model(input_ids=batch, use_cache=False).logits[:, -1]
            cache = [(layer.keys, layer.values) for layer in prefill.past_key_values.layers]
            position = torch.full((len(batch), 1), batch.shape[1] - 1)
            mask = torch.ones(len(batch), batch.shape[1], dtype=torch.long)
            got = llama_step.decode_step(model, batch[:, -1:], position, KVBuffer(cache, 32), mask, project)
            assert torch.allclose(got, want, atol=1e-4, rtol=0), float((got - want).abs().max())


def test_the_block_kernel_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("LMFORGE_LINEAR", "onednn")
    block_weights.kernel.cache_clear()
    try:
        assert block_weights.kernel() is None
        model = tiny_llama(vocab=96)
        assert getattr(llama_step.projection_for(model), "blocks", 0) == 0
    finally:
        monkeypatch.delenv("LMFORGE_LINEAR")
        block_weights.kernel.cache_clear()


def test_a_bf16_checkpoint_read_in_fp32_is_read_as_bf16():
    torch.manual_seed(0)
    w = torch.randn(80, 64).bfloat16().float()
    b = block_weights.find_blocks(w)
    assert b is not None and b.bits == 16 and b.nbytes < w.numel() * 2 + 16
    assert torch.equal(b.codes.view(torch.bfloat16).float().view(80, 64), w)
    stacked = block_weights.stack([b, block_weights.find_blocks(w[:16])])
    for rows in (1, 5):
        x = torch.randn(rows, 64)
        assert torch.allclose(
            block_weights.block_linear(x, stacked), x @ torch.cat([w, w[:16]]).T, rtol=1e-5, atol=1e-5
        )


def test_a_group_with_mixed_forms_reads_each_weight_in_its_own():
    """As in llama.cpp's mixed quantisations: Q and K in Q4_0, V in Q8_0 (three calls instead of one)."""
    torch.manual_seed(0)
    model = tiny_llama(vocab=96).eval()
    attn = model.model.layers[0].self_attn
    with torch.no_grad():
        for lin, kind in ((attn.q_proj, "Q4_0"), (attn.k_proj, "Q4_0"), (attn.v_proj, "Q8_0")):
            lin.weight.copy_(gguf_roundtrip(lin.weight, kind))
    project = llama_step.projection_for(model)
    assert project.blocks == 3
    x = torch.randn(2, 1, 32)
    for got, lin in zip(
        project(x, attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight), (attn.q_proj, attn.k_proj, attn.v_proj)
    ):
        assert torch.allclose(got, lin(x), rtol=1e-5, atol=1e-5)


def test_off_the_cpu_the_step_keeps_torchs_own_linear(monkeypatch):
    """A model on an accelerator (here the meta device) gets F.linear: the block kernel and oneDNN
    are CPU kernels, and neither is even chosen."""
    monkeypatch.setattr(llama_step, "pick_linear", lambda dtype: pytest.fail("a CPU kernel was picked"))
    model = tiny_llama(vocab=96).to("meta")
    project = llama_step.projection_for(model)
    assert getattr(project, "blocks", 0) == 0
    assert project(torch.empty(2, 1, 32, device="meta"), model.lm_head.weight)[0].shape == (2, 1, 96)
