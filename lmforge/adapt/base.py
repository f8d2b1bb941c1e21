"""Load the model to adapt: an HF folder, an lmforge run, a GGUF file, or a Hub id.

Whatever the source, the result is saved once as a plain HF folder with safetensors
(`<run>/adapt/base`), and training reads only that folder. A GGUF file is dequantised by
transformers' GGUF loader (needs the `gguf` package) and cached next to it, so the slow
conversion happens once per file.
"""

import hashlib
from pathlib import Path

import torch

from lmforge.errors import CheckpointError, ConfigError
from lmforge.generate import load_model_and_tokenizer


def _gguf_cache(path: Path) -> Path:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return path.parent / f".{path.stem}.lmforge-{key}"


def _from_gguf(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = _gguf_cache(path)
    if not (cache / "config.json").is_file():
        try:
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        except ImportError as e:
            raise ConfigError(f"{path}: loading GGUF needs the gguf package ({e})") from None
        # transformers keeps a GGUF model marked as quantized (not serializable): rebuild it as a
        # plain fp32 model from its config and the dequantised weights, then save that
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        plain.save_pretrained(cache, safe_serialization=True)
        tokenizer.save_pretrained(cache)
    return load_model_and_tokenizer(cache)


def _from_hub(repo_id: str, trust_remote_code: bool):
    from huggingface_hub import snapshot_download

    try:
        local = snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"])
    except Exception as e:  # offline, unknown repo, gated: one line naming the id
        raise CheckpointError(f"{repo_id}: not a local model and not downloadable from the Hub "
                              f"({type(e).__name__}: {str(e).splitlines()[0]})") from None
    return load_model_and_tokenizer(local, trust_remote_code=trust_remote_code)


def load_base(source: str | Path, trust_remote_code: bool = False):
    """(model, tokenizer) in fp32 on CPU, from any of the four kinds of source."""
    path = Path(source)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise CheckpointError(f"{path}: GGUF file not found")
        return _from_gguf(path)
    if path.exists():
        return load_model_and_tokenizer(path, trust_remote_code=trust_remote_code)
    if str(source).count("/") == 1 and not str(source).startswith((".", "/")):
        return _from_hub(str(source), trust_remote_code)
    raise CheckpointError(f"{source}: no such model folder, run, GGUF file or Hub id")
