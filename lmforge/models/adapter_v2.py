"""LLaMA-Adapter V2's units (Gao et al., 2023) beside peft's adaption prompts (which are V1):
every linear layer below the output gets a learnable scale and bias, y = s ⊙ (Wx + b) with s = 1
and b = 0 at the start, and the RMSNorm weights train too. peft has no V2, so this file holds the
units: added in place, saved and loaded alone (safetensors, by their names in the base), and
folded into plain linear layers for inference, y = (s ⊙ W)x + s ⊙ (b₀ + b).

A fresh unit computes exactly what the base does (1·(y + 0) is y in floating point), so
training starts from the base model as V1's zero-initialised gates do.
"""

from pathlib import Path

import torch
from torch import nn

from lmforge.errors import CheckpointError

FILE = "adapter_v2.safetensors"  # beside peft's adapter files in the adapter folder


class ScaledLinear(nn.Module):
    """A frozen linear layer with V2's learnable output scale and bias."""

    def __init__(self, base: nn.Linear, site: str):
        super().__init__()
        self.base = base
        self.v2_site = site  # the layer's name in the base model: the saved units' keys
        kw = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.scale = nn.Parameter(torch.ones(base.out_features, **kw))
        self.shift = nn.Parameter(torch.zeros(base.out_features, **kw))

    # what peft's adaption prompt reads from the projections it wraps
    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (self.base(x) + self.shift)


def _is_norm(module: nn.Module) -> bool:
    return "norm" in type(module).__name__.lower() and isinstance(getattr(module, "weight", None), nn.Parameter)


def add_units(model: nn.Module) -> None:
    """Wrap every linear layer but the output layer in place and mark the norms as V2's; call on the
    plain base, before peft wraps its attention (the names recorded are the base's)."""
    output = model.get_output_embeddings()
    for name, module in list(model.named_modules()):
        if _is_norm(module):
            module.v2_site = name
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child is not output:
                site = f"{name}.{child_name}" if name else child_name
                setattr(module, child_name, ScaledLinear(child, site))


def unit_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """V2's own parameters by their saved names (site.scale, site.shift, norm site.weight)."""
    out = {}
    for module in model.modules():
        if isinstance(module, ScaledLinear):
            out[f"{module.v2_site}.scale"] = module.scale
            out[f"{module.v2_site}.shift"] = module.shift
        elif hasattr(module, "v2_site"):
            out[f"{module.v2_site}.weight"] = module.weight
    return out


def save_units(model: nn.Module, folder: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: p.detach().cpu().contiguous() for k, p in unit_parameters(model).items()}, str(folder / FILE))


def load_units(model: nn.Module, path: Path) -> None:
    """Units on a base that `add_units` prepared: every saved tensor must find its place, and every
    place its tensor (a V2 file from another architecture fails naming the first mismatch)."""
    from safetensors.torch import load_file

    saved = load_file(str(path))
    params = unit_parameters(model)
    for missing in sorted(set(params) ^ set(saved))[:1]:
        where = "not in the model" if missing in saved else "missing from the file"
        raise CheckpointError(f"{path}: LLaMA-Adapter V2 unit {missing} {where} (another base model?)")
    with torch.no_grad():
        for name, p in params.items():
            if saved[name].shape != p.shape:
                raise CheckpointError(
                    f"{path}: {name} has shape {tuple(saved[name].shape)}, the model {tuple(p.shape)}"
                )
            p.copy_(saved[name])


def fold_units(model: nn.Module) -> int:
    """Replace every ScaledLinear by the plain linear layer that computes the same, with a bias;
    returns how many were folded. Inference then costs what the base costs."""
    folded = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if not isinstance(child, ScaledLinear):
                continue
            base = child.base
            plain = nn.Linear(base.in_features, base.out_features, bias=True, device=base.weight.device)
            with torch.no_grad():
                s = child.scale.float()
                b0 = base.bias.float() if base.bias is not None else torch.zeros_like(s)
                plain.weight.copy_(s[:, None] * base.weight.float())
                plain.bias.copy_(s * (b0 + child.shift.float()))
            setattr(module, child_name, plain.to(base.weight.dtype))
            folded += 1
    return folded
