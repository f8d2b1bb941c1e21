"""Sampling with temperature, top-k and top-p through transformers' `generate`."""

import time
from pathlib import Path

import torch

from lmforge.models import load_model_and_tokenizer, resolve_model_dir
from lmforge.recipe import GenerateConfig
from lmforge.rundir import record_stage, write_report_section


def generate_texts(model, tokenizer, prompts: list[str], max_new_tokens: int = 64, temperature: float = 0.8,
                   top_k: int = 50, top_p: float = 0.95, seed: int = 0) -> list[str]:
    """Continuations (without the prompt) for each prompt; temperature 0 means greedy decoding."""
    torch.manual_seed(seed)
    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(model.device)
        sample = temperature > 0
        with torch.no_grad():
            gen = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                temperature=temperature if sample else None,
                top_k=top_k if sample else None,
                top_p=top_p if sample else None,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )
        out.append(tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
    return out


def run_generate_stage(cfg: GenerateConfig, run_dir: str | Path) -> dict:
    """Sample from cfg.checkpoint (default: the run's newest checkpoint) and add the samples to the report."""
    started = time.time()
    run_dir = Path(run_dir)
    model_dir = resolve_model_dir(cfg.checkpoint or run_dir)
    model, tokenizer = load_model_and_tokenizer(model_dir)
    texts = generate_texts(model, tokenizer, cfg.prompts, cfg.max_new_tokens, cfg.temperature, cfg.top_k,
                           cfg.top_p, cfg.seed)
    samples = [{"prompt": p, "completion": t} for p, t in zip(cfg.prompts, texts)]
    record_stage(run_dir, "generate", cfg.model_dump(), [model_dir], cfg.seed, started,
                 {"model": str(model_dir), "samples": samples})
    lines = ["## Generate", "", f"Samples from `{model_dir}` (temperature {cfg.temperature}, top-k {cfg.top_k}, "
             f"top-p {cfg.top_p}, seed {cfg.seed}):", ""]
    for s in samples:
        lines += [f"> **{s['prompt']}**{s['completion']}".replace("\n", " "), ""]
    write_report_section(run_dir, "generate", "\n".join(lines))
    return {"model": str(model_dir), "samples": samples}
