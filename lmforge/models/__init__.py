"""One way to find and load a model, for every verb that takes one.

A model reference is any of: an HF model folder, a peft adapter folder (loaded on the base it
names), an lmforge run directory (its newest model), a GGUF file (dequantised once and cached as
safetensors), or a Hugging Face Hub id (downloaded with `huggingface_hub`). `resolve_model_dir`
turns each into a local folder; the loaders read only such folders, safetensors only.
"""

from lmforge.models.load import load_causal_lm, load_model_and_tokenizer, load_tokenizer
from lmforge.models.packaged import packaged_gguf
from lmforge.models.resolve import resolve_model_dir
from lmforge.models.runs import is_model_dir, is_run_dir, latest_checkpoint, run_model

__all__ = [
    "is_model_dir",
    "is_run_dir",
    "latest_checkpoint",
    "load_causal_lm",
    "load_model_and_tokenizer",
    "load_tokenizer",
    "packaged_gguf",
    "resolve_model_dir",
    "run_model",
]
