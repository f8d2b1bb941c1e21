"""Sample continuations of prompts through the shared decode engine (all prompts in one batch)."""

import time
from pathlib import Path

from typing_extensions import TypedDict

from lmforge.engine import Engine, GenerationError, SamplingParams
from lmforge.engine.events import Event, Failed, Text
from lmforge.models import load_model_and_tokenizer, resolve_model_dir
from lmforge.recipe import GenerateConfig
from lmforge.recipe.schema import SAMPLING_DEFAULTS
from lmforge.rundir import record_stage, write_report_section


def generate_texts(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = SAMPLING_DEFAULTS["max_new_tokens"],
    temperature: float = SAMPLING_DEFAULTS["temperature"],
    top_k: int = SAMPLING_DEFAULTS["top_k"],
    top_p: float = SAMPLING_DEFAULTS["top_p"],
    seed: int = 0,
) -> list[str]:
    """Continuations (without the prompt) for each prompt; temperature 0 means greedy decoding.
    Prompt i is sampled with seed + i, so each is reproducible on its own."""
    engine = Engine(model, tokenizer, max_batch=max(1, len(prompts)), start=False)
    engine.stops = {tokenizer.eos_token_id} - {None}  # raw text: only EOS ends a continuation
    events: list[list[Event]] = [[] for _ in prompts]
    for i, prompt in enumerate(prompts):
        ids = tokenizer(prompt, add_special_tokens=False).input_ids
        params = SamplingParams(
            max_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed + i
        )
        engine.submit(ids, params, events[i].append)
    while engine.running or engine.waiting:
        engine.run_once()
    for evs in events:
        if evs and isinstance(evs[-1], Failed):
            raise GenerationError(f"generation failed: {evs[-1].message}")
    return ["".join(ev.piece for ev in evs if isinstance(ev, Text)) for evs in events]


class GenerateResult(TypedDict):
    model: str
    samples: list[dict[str, str]]  # prompt, completion


def run_generate_stage(cfg: GenerateConfig, run_dir: str | Path) -> GenerateResult:
    """Sample from cfg.checkpoint (default: the run's newest checkpoint) and add the samples to the report."""
    started = time.time()
    run_dir = Path(run_dir)
    model_dir = resolve_model_dir(cfg.checkpoint or run_dir)
    model, tokenizer = load_model_and_tokenizer(model_dir)
    texts = generate_texts(
        model, tokenizer, cfg.prompts, cfg.max_new_tokens, cfg.temperature, cfg.top_k, cfg.top_p, cfg.seed
    )
    samples = [{"prompt": p, "completion": t} for p, t in zip(cfg.prompts, texts)]
    record_stage(
        run_dir,
        "generate",
        cfg.model_dump(),
        [model_dir],
        cfg.seed,
        started,
        {"model": str(model_dir), "samples": samples},
    )
    lines = [
        "## Generate",
        "",
        f"Samples from `{model_dir}` (temperature {cfg.temperature}, top-k {cfg.top_k}, "
        f"top-p {cfg.top_p}, seed {cfg.seed}):",
        "",
    ]
    for s in samples:
        lines += [f"> **{s['prompt']}**{s['completion']}".replace("\n", " "), ""]
    write_report_section(run_dir, "generate", "\n".join(lines))
    return {"model": str(model_dir), "samples": samples}
