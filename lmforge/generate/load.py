"""Find and load a model: an HF folder, or a run directory (its newest checkpoint)."""

from pathlib import Path

from lmforge.errors import CheckpointError


def is_model_dir(path: Path) -> bool:
    """An HF model folder, or a peft adapter folder (which names its base)."""
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def resolve_model_dir(path: str | Path) -> Path:
    """A model or adapter folder is itself; a run folder resolves to its newest model, in stage
    order: the chat model (`sft`), its adapter, the adapted model (`adapt`), the newest checkpoint."""
    path = Path(path)
    if is_model_dir(path):
        return path
    for newest_first in ("chat", "sft/adapter", "adapted"):
        if is_model_dir(path / newest_first):
            return path / newest_first
    pointer = path / "checkpoints" / "latest"
    if pointer.is_file():
        ckpt = path / "checkpoints" / pointer.read_text().strip()
        if (ckpt / "config.json").is_file():
            return ckpt
    if not path.exists():
        raise CheckpointError(f"{path}: no such model or run directory")
    raise CheckpointError(f"{path}: not a model folder (no config.json) nor a run with checkpoints")


def load_causal_lm(path: str | Path, trust_remote_code: bool = False, **kwargs):
    """The causal LM of a model folder or run (no tokenizer), safetensors only; `kwargs` go to
    `from_pretrained` (dtype, attention implementation)."""
    from transformers import AutoModelForCausalLM

    model_dir = resolve_model_dir(path)
    if not any(model_dir.glob("*.safetensors")):
        raise CheckpointError(f"{model_dir}: no .safetensors weights (lmforge does not load pickled weights)")
    try:
        return AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True,
                                                    trust_remote_code=trust_remote_code, **kwargs)
    except ValueError as e:
        raise CheckpointError(f"{model_dir}: not a causal language model ({str(e).splitlines()[0]})") from None


def load_model_and_tokenizer(path: str | Path, device: str = "cpu", trust_remote_code: bool = False):
    """Load with safetensors only; remote code only when the user explicitly allows it."""
    model_dir = resolve_model_dir(path)
    if (model_dir / "adapter_config.json").is_file() and not (model_dir / "config.json").is_file():
        return _load_adapter(model_dir, device, trust_remote_code)
    model = load_causal_lm(model_dir, trust_remote_code)
    return model.to(device).eval(), _tokenizer(model_dir, trust_remote_code)


def _tokenizer(model_dir: Path, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{model_dir}: no usable tokenizer ({str(e).splitlines()[0]})") from None


def _load_adapter(adapter_dir: Path, device: str, trust_remote_code: bool):
    """A peft adapter (LoRA, LLaMA-Adapter) on top of the base its config names, loaded the safe way."""
    import json

    from peft import PeftModel

    base_path = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    base = load_causal_lm(base_path, trust_remote_code)
    return PeftModel.from_pretrained(base, adapter_dir).to(device).eval(), _tokenizer(adapter_dir, trust_remote_code)
