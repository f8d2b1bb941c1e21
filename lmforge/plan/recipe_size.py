"""Parameter count of a recipe's model, built on the meta device (no memory, no time)."""

import torch
from transformers import AutoModelForCausalLM

from lmforge.recipe import Recipe
from lmforge.train import count_params, hf_config


def recipe_params(recipe: Recipe) -> float:
    cfg = hf_config(recipe.model, recipe.tokenizer.vocab_size, recipe.train.seq_len, 0, None)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return float(count_params(model))
