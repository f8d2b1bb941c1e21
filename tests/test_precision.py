import torch

from lmforge.train.precision import cpu_has_native_bf16, use_bf16


def test_explicit_precision_wins():
    cpu = torch.device("cpu")
    assert use_bf16("bf16", cpu) is True and use_bf16("fp32", cpu) is False


def test_auto_on_cpu_follows_native_bf16_support():
    assert use_bf16("auto", torch.device("cpu")) == cpu_has_native_bf16()
