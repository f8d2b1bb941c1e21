"""How a tuning stage wraps its model: full fine-tuning trains it as it is; LoRA and LLaMA-Adapter
wrap it through `peft` so that only their own parameters train. Shared by sft and dpo; a bad
setting fails in one line naming the stage's own key."""

import warnings

from lmforge.errors import ConfigError
from lmforge.recipe.schema import Tuning


def attach_method(model, cfg: Tuning, section: str, seed: int = 0):
    """`model` ready for `cfg.method`; `section` ("sft", "dpo") names the recipe keys in errors. The
    adapter's random initial weights come from `seed`: the same run gives the same adapter."""
    if cfg.method == "full":
        return model
    import torch
    from peft import AdaptionPromptConfig, LoraConfig, get_peft_model

    torch.manual_seed(seed)

    # peft asks transformers a deprecated question on every wrap; the answer is right, the warning noise
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

    if cfg.method == "lora":
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        targets = [t for t in cfg.lora_targets if t in names]
        if not targets:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
            raise ConfigError(
                f"{section}.lora_targets: none of {cfg.lora_targets} is a module of this model; its "
                f"linear layers are {linear}"
            )
        peft_cfg = LoraConfig(
            r=cfg.lora_rank,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
    else:
        peft_cfg = AdaptionPromptConfig(
            adapter_len=cfg.adapter_len,
            task_type="CAUSAL_LM",
            adapter_layers=min(cfg.adapter_layers, model.config.num_hidden_layers),
        )
    return get_peft_model(model, peft_cfg)
