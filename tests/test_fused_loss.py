import pytest
import torch
import torch.nn.functional as F

from lmforge.train.fused_loss import cross_entropy


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_cross_entropy_matches_pytorch_value_and_gradient(dtype):
    torch.manual_seed(0)
    logits = (torch.randn(64, 301) * 3).to(dtype)
    targets = torch.randint(0, 301, (64,))
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    ours = cross_entropy(a, targets)
    ref = F.cross_entropy(b.float(), targets)
    (ours * 2.5).backward()
    (ref * 2.5).backward()
    tol = 1e-6 if dtype == torch.float32 else 1e-2
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    assert a.grad.dtype == dtype
    torch.testing.assert_close(a.grad.float(), b.grad.float(), rtol=tol, atol=tol)
    assert torch.equal(a.detach(), logits)  # the input logits are not modified
