"""Find and load a model: an HF folder, or a run directory (its newest checkpoint)."""

from pathlib import Path

from lmforge.errors import CheckpointError


def resolve_model_dir(path: str | Path) -> Path:
    """A folder with config.json is a model; a run folder resolves to its newest model: the
    adapted model when the run has one (`adapt` comes after `pretrain`), else checkpoints/latest."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    if (path / "adapted" / "config.json").is_file():
        return path / "adapted"
    pointer = path / "checkpoints" / "latest"
    if pointer.is_file():
        ckpt = path / "checkpoints" / pointer.read_text().strip()
        if (ckpt / "config.json").is_file():
            return ckpt
    if not path.exists():
        raise CheckpointError(f"{path}: no such model or run directory")
    raise CheckpointError(f"{path}: not a model folder (no config.json) nor a run with checkpoints")


def load_model_and_tokenizer(path: str | Path, device: str = "cpu", trust_remote_code: bool = False):
    """Load with safetensors only; remote code only when the user explicitly allows it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = resolve_model_dir(path)
    if not any(model_dir.glob("*.safetensors")):
        raise CheckpointError(f"{model_dir}: no .safetensors weights (lmforge does not load pickled weights)")
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True,
                                                     trust_remote_code=trust_remote_code)
    except ValueError as e:
        raise CheckpointError(f"{model_dir}: not a causal language model ({str(e).splitlines()[0]})") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{model_dir}: no usable tokenizer ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), tokenizer
