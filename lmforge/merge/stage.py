"""`lmforge merge`: one model from several of the same architecture, tensor by tensor.

<run>/merged/   the result, a plain HF folder (config and tokenizer of the model it is built on)

Methods: linear averaging, task arithmetic, SLERP, TIES and DARE (lmforge/merge/methods.py), and
the chat vector of language adaptation: a chat model's difference from its base, added to the
base after continued pretraining on a new language, gives a chat model in that language without
SFT (Huang et al., 2024). With `heldout` conversations, the report gives the chat loss per
language of the model it builds on and of the result.
"""

import hashlib
import json
import shutil
import time
from pathlib import Path

import torch
from typing_extensions import TypedDict

from lmforge.errors import ConfigError
from lmforge.merge import methods
from lmforge.merge.tensors import ShardWriter, Tensors
from lmforge.models import resolve_model_dir
from lmforge.recipe import MergeConfig
from lmforge.rundir import record_stage, write_report_section

# config keys that must agree for tensors of the same name to mean the same thing
ARCHITECTURE = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
)


class MergeResult(TypedDict):
    method: str
    inputs: dict[str, str]  # role (model 1, base, chat, onto) -> folder
    output: str
    tensors: int
    tokenizer_from: str
    extended_rows: dict[str, int]  # chat_vector: tensor -> rows of added tokens left as `onto` has them
    heldout_loss: dict[str, dict[str, float]]  # language -> {model role or "merged": loss}


def _roles(cfg: MergeConfig) -> dict[str, str]:
    """The method's inputs by role, checked for presence: one line naming the missing key."""
    m = cfg.method
    if m == "chat_vector":
        missing = [k for k in ("base", "chat", "onto") if not getattr(cfg, k)]
        if missing:
            raise ConfigError(f"merge.{missing[0]}: the chat vector needs base, chat and onto (--base --chat --onto)")
        return {"onto": cfg.onto, "base": cfg.base, "chat": cfg.chat}
    need = {"linear": 2, "slerp": 2, "task_arithmetic": 1, "ties": 1, "dare": 1}[m]
    if len(cfg.models) < need or (m == "slerp" and len(cfg.models) != 2):
        raise ConfigError(
            f"merge.models: {m} takes {'exactly' if m == 'slerp' else 'at least'} {need}, got {len(cfg.models)}"
        )
    roles = {f"model {i + 1}": ref for i, ref in enumerate(cfg.models)}
    if m in ("task_arithmetic", "ties", "dare"):
        if not cfg.base:
            raise ConfigError(f"merge.base: {m} adds task vectors to a base model; give it (--base)")
        roles = {"base": cfg.base, **roles}
    return roles


def _weights(cfg: MergeConfig) -> list[float]:
    n = 1 if cfg.method == "chat_vector" else len(cfg.models)
    if cfg.method == "slerp":
        return []
    weights = cfg.weights or [1.0] * n
    if len(weights) != n:
        raise ConfigError(f"merge.weights: {len(weights)} given for {n} model(s)")
    if cfg.method == "linear" and sum(weights) == 0:
        raise ConfigError("merge.weights: a weighted average needs weights that do not sum to 0")
    return weights


def _check_architectures(folders: dict[str, Path]) -> dict:
    configs = {role: json.loads((f / "config.json").read_text()) for role, f in folders.items()}
    first_role, first = next(iter(configs.items()))
    for role, c in configs.items():
        for key in ARCHITECTURE:
            if c.get(key) != first.get(key):
                raise ConfigError(
                    f"merge: {role} ({folders[role]}) has {key} = {c.get(key)}, {first_role} has {first.get(key)}: "
                    "only models of one architecture merge"
                )
    return first


def _tokenizer(cfg: MergeConfig, folders: dict[str, Path]):
    """The result's tokenizer: chat_vector: `onto`'s (it must extend `base`'s, ids unchanged) with the
    chat model's template; otherwise the inputs' shared one, or `tokenizer_from` when they differ."""
    from lmforge.models import load_tokenizer

    toks = {role: load_tokenizer(f) for role, f in folders.items()}
    if cfg.method == "chat_vector":
        base, onto = toks["base"].get_vocab(), toks["onto"].get_vocab()
        moved = next((t for t, i in base.items() if onto.get(t) != i), None)
        if moved is not None:
            raise ConfigError(
                f"merge.onto: its tokenizer is not base's extended (token {moved!r} has id {onto.get(moved)} "
                f"there, {base[moved]} in base); the chat vector needs the original ids in place"
            )
        tok = toks["onto"]
        tok.chat_template = toks["chat"].chat_template or tok.chat_template
        return tok, "onto"
    if cfg.tokenizer_from:
        return load_tokenizer(resolve_model_dir(cfg.tokenizer_from)), cfg.tokenizer_from
    first_role, first = next(iter(toks.items()))
    for role, t in toks.items():
        if t.get_vocab() != first.get_vocab() or t.all_special_tokens != first.all_special_tokens:
            raise ConfigError(
                f"merge: {role}'s tokenizer differs from {first_role}'s; name the result's with "
                "merge.tokenizer_from (--tokenizer-from) if the token ids still mean the same"
            )
    return first, first_role


def _merge_tensor(cfg: MergeConfig, name: str, x: dict[str, torch.Tensor], weights: list[float], seed: int):
    models = [x[r] for r in x if r.startswith("model ")]
    m = cfg.method
    if m == "linear":
        return methods.linear(models, weights)
    if m == "slerp":
        return methods.slerp(models[0], models[1], cfg.t)
    if m == "task_arithmetic":
        return methods.task_arithmetic(x["base"], models, weights)
    if m == "ties":
        return methods.ties(x["base"], models, weights, cfg.density)
    if m == "dare":  # the drop mask of each tensor from the seed and its name: any order, same result
        g = torch.Generator().manual_seed(seed + int(hashlib.blake2b(name.encode(), digest_size=6).hexdigest(), 16))
        return methods.dare(x["base"], models, weights, cfg.density, g)
    return methods.chat_vector(x["onto"], x["base"], x["chat"], weights[0])


def merge_folders(cfg: MergeConfig, out: Path, seed: int = 0) -> MergeResult:
    """Write the merge `cfg` describes into the HF folder `out` (replaced whole, atomically)."""
    roles = _roles(cfg)
    weights = _weights(cfg)
    folders = {role: resolve_model_dir(ref) for role, ref in roles.items()}
    for role, f in folders.items():
        if not (f / "config.json").is_file():
            raise ConfigError(f"merge: {role} {f} is an adapter, not a model folder (merge it into its base first)")
    config = _check_architectures(folders)
    tokenizer, tokenizer_from = _tokenizer(cfg, folders)
    sources = {role: Tensors(f) for role, f in folders.items()}
    shape_role = next(iter(sources))  # onto, base, or the first model: the result's config and shapes
    names = sources[shape_role].names()
    for role, s in sources.items():
        if s.names() != names:
            extra = sorted(set(s.names()) ^ set(names))[0]
            raise ConfigError(f"merge: {role} and {shape_role} differ in tensor {extra} (tied embeddings on one?)")
    extended = {}
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writer = ShardWriter(tmp, cfg.shard_mb * 2**20)
    for name in names:
        shapes = {role: s.shapes[name] for role, s in sources.items()}
        reference = shapes["base"] if cfg.method == "chat_vector" else shapes[shape_role]
        for role, shape in shapes.items():
            longer = role == "onto" and shape[0] >= reference[0] and shape[1:] == reference[1:]
            if shape != reference and not longer:
                raise ConfigError(f"merge: {name} is {shape} in {role}, {reference} in {shape_role}")
        if shapes[shape_role] != reference:
            extended[name] = shapes[shape_role][0] - reference[0]
        x = {role: s.get(name) for role, s in sources.items()}
        dtype = x[shape_role].dtype
        writer.add(name, _merge_tensor(cfg, name, x, weights, seed).to(dtype))
    writer.finish()
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    generation = folders[shape_role] / "generation_config.json"
    if generation.is_file():
        shutil.copy(generation, tmp / "generation_config.json")
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return {
        "method": cfg.method,
        "inputs": {role: str(f) for role, f in folders.items()},
        "output": str(out),
        "tensors": len(names),
        "tokenizer_from": tokenizer_from,
        "extended_rows": extended,
        "heldout_loss": {},
    }


def _heldout(cfg: MergeConfig, result: MergeResult, seed: int) -> dict[str, dict[str, float]]:
    """Chat loss per language (nats per assistant token) of the inputs and of the result, each with
    its own tokenizer (comparable between models that share one: the result and what it was built
    on), through the result's chat template where a model has none (a base model)."""
    from lmforge.chat.template import CHATML_TEMPLATE
    from lmforge.models import load_model_and_tokenizer, load_tokenizer
    from lmforge.sft import heldout_by_language, heldout_loss

    template = load_tokenizer(result["output"]).chat_template or CHATML_TEMPLATE
    out: dict[str, dict[str, float]] = {}
    for role, folder in {**result["inputs"], "merged": result["output"]}.items():
        model, tok = load_model_and_tokenizer(folder)
        tok.chat_template = tok.chat_template or template
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        by_lang = heldout_by_language(tok, cfg.heldout, seed, model.config.max_position_embeddings)
        with torch.no_grad():
            for lang, examples in by_lang.items():
                out.setdefault(lang, {})[role] = heldout_loss(model, examples, 8, pad)
    return out


def run_merge_stage(cfg: MergeConfig, run_dir: str | Path, seed: int) -> MergeResult:
    started = time.time()
    run_dir = Path(run_dir)
    result = merge_folders(cfg, run_dir / "merged", seed)
    if cfg.heldout:
        result["heldout_loss"] = _heldout(cfg, result, seed)
    record_stage(
        run_dir,
        "merge",
        cfg.model_dump(),
        [*result["inputs"].values(), *(d.path for d in cfg.heldout)],
        seed,
        started,
        result,
    )
    write_report_section(run_dir, "merge", _report(result))
    return result


def _report(r: MergeResult) -> str:
    inputs = ", ".join(f"{role} `{f}`" for role, f in r["inputs"].items())
    lines = ["## Merge", "", f"**{r['method']}** of {inputs}: {r['tensors']} tensors -> `{r['output']}`."]
    if r["method"] == "chat_vector":
        lines += [
            "",
            "Chat vector (Huang et al., 2024): onto + (chat - base), tensor by tensor; the tokenizer is "
            "onto's with the chat model's template.",
        ]
        if r["extended_rows"]:
            lines.append(
                "Rows of tokens added by tokenizer extension kept as onto has them: "
                + ", ".join(f"`{k}` {v}" for k, v in r["extended_rows"].items())
                + "."
            )
    if r["heldout_loss"]:
        roles = list(next(iter(r["heldout_loss"].values())))
        lines += [
            "",
            "Held-out chat loss (nats per assistant token; each model with its own tokenizer, so compare "
            "the result with the model it was built on):",
            "",
            "| language | " + " | ".join(roles) + " |",
            "|---|" + "---:|" * len(roles),
        ]
        lines += [
            f"| {lang} | " + " | ".join(f"{losses.get(role, float('nan')):.4f}" for role in roles) + " |"
            for lang, losses in r["heldout_loss"].items()
        ]
    return "\n".join(lines)
