"""Load a resolved model: causal LM (safetensors only), tokenizer, or a peft adapter on its base."""

import json
from pathlib import Path

from lmforge.errors import CheckpointError
from lmforge.models import adapter_v2
from lmforge.models.resolve import resolve_model_dir


def load_causal_lm(ref: str | Path, trust_remote_code: bool = False, **kwargs):
    """The causal LM behind any model reference (no tokenizer); `kwargs` go to `from_pretrained`
    (dtype, attention implementation). Remote code only when the user explicitly allows it."""
    from transformers import AutoModelForCausalLM

    model_dir = resolve_model_dir(ref)
    if (model_dir / "adapter_config.json").is_file() and not (model_dir / "config.json").is_file():
        raise CheckpointError(f"{model_dir}: an adapter, not a full model (merge it, or use its chat model)")
    if not any(model_dir.glob("*.safetensors")):
        raise CheckpointError(f"{model_dir}: no .safetensors weights (lmforge does not load pickled weights)")
    try:
        return AutoModelForCausalLM.from_pretrained(
            model_dir, use_safetensors=True, trust_remote_code=trust_remote_code, **kwargs
        )
    except ValueError as e:
        raise CheckpointError(f"{model_dir}: not a causal language model ({str(e).splitlines()[0]})") from None


def load_tokenizer(ref: str | Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    model_dir = resolve_model_dir(ref)
    try:
        return AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{model_dir}: no usable tokenizer ({str(e).splitlines()[0]})") from None


def load_model_and_tokenizer(ref: str | Path, device: str = "cpu", trust_remote_code: bool = False, **kwargs):
    """(model in eval mode on `device`, tokenizer) for any model reference; an adapter folder comes
    back as a peft model on the base its config names (with LLaMA-Adapter V2's units, when the
    folder holds them, folded into the base's linear layers)."""
    model_dir = resolve_model_dir(ref)
    if (model_dir / "adapter_config.json").is_file() and not (model_dir / "config.json").is_file():
        from peft import PeftModel

        base_ref = json.loads((model_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
        base = load_causal_lm(base_ref, trust_remote_code, **kwargs)
        units = model_dir / adapter_v2.FILE
        if units.is_file():
            adapter_v2.add_units(base)
            adapter_v2.load_units(base, units)
        model = PeftModel.from_pretrained(base, model_dir)
        adapter_v2.fold_units(model)
    else:
        model = load_causal_lm(model_dir, trust_remote_code, **kwargs)
    return model.to(device).eval(), load_tokenizer(model_dir, trust_remote_code)
