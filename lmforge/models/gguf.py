"""GGUF file -> plain HF folder (fp32 safetensors + tokenizer), converted once and cached.

transformers dequantises GGUF tensors (Q4/Q8/F16 ...) through the `gguf` package but keeps the
model marked as quantized, which cannot be saved or trained. We rebuild a plain model from the
same config and weights and save that, next to the file when its folder is writable (so a copied
file carries its cache), else under ~/.cache/lmforge/gguf. The key covers path, size and mtime:
a changed file converts again.
"""

import hashlib
import os
from pathlib import Path

from lmforge.errors import CheckpointError, ConfigError
from lmforge.rundir import user_cache_dir, written_aside


def _cache_name(path: Path) -> str:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return f".{path.stem}.lmforge-{key}"


def _user_cache(path: Path) -> Path:
    return user_cache_dir("gguf", _cache_name(path))


def cache_dir(path: Path) -> Path:
    if os.access(path.parent, os.W_OK):
        return path.parent / _cache_name(path)
    return _user_cache(path)


def gguf_tokenizer(path: Path):
    """The GGUF's tokenizer as transformers reads it: from the converted model when there is one,
    else converted once into the user cache (reading a 49k-token vocabulary from GGUF takes
    seconds in pure Python; the user cache keeps a release folder free of cache files)."""
    from transformers import AutoTokenizer

    folder = cache_dir(path)
    if not (folder / "tokenizer_config.json").is_file():
        folder = _user_cache(path).with_name(_cache_name(path) + ".tokenizer")
    if (folder / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    with written_aside(folder) as partial:
        tokenizer.save_pretrained(partial)
    return tokenizer


def gguf_to_folder(path: Path) -> Path:
    cache = cache_dir(path)
    if (cache / "config.json").is_file():
        return cache
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except ImportError as e:
        raise ConfigError(f"{path}: loading GGUF needs the gguf package ({e})") from None
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a GGUF model transformers can read ({str(e).splitlines()[0]})") from None
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    with written_aside(cache) as partial:  # an interrupted conversion never looks finished
        plain.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
    return cache
