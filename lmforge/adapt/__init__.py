"""Language adaptation: continued pretraining of an existing model on a new language, with data
mixes and replay, phases, tokenizer extension, linear RoPE scaling, and built-in gain/forgetting."""

from lmforge.adapt.context import apply_rope_scaling, passkey_accuracy
from lmforge.adapt.stage import run_adapt_stage
from lmforge.adapt.tokenizer_extension import extend_tokenizer, init_new_embeddings

__all__ = [
    "apply_rope_scaling",
    "extend_tokenizer",
    "init_new_embeddings",
    "passkey_accuracy",
    "run_adapt_stage",
]
