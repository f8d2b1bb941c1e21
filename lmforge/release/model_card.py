"""README.md of the release: a `huggingface_hub` ModelCard whose metadata the Hub reads (language,
licence, base model, datasets, `model-index` eval results) and whose body says what was trained on
what, how it scored in each language, what it is for, how to load it, and what it cost."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from lmforge.models.resolve import looks_like_hub_id
from lmforge.release.licenses import hub_license


def eval_results(results: dict) -> list[EvalResult]:
    """Every task and metric and every language's bits per byte, exactly as `eval` computed them."""
    out = []
    for t in results.get("tasks", []):
        for metric, v in t["metrics"].items():
            out.append(
                EvalResult(
                    task_type="multiple-choice",
                    task_name=t.get("benchmark", t["task"]),
                    dataset_type=t["task"],
                    dataset_name=f"{t['task']} ({t.get('language', '?')})",
                    dataset_split="test",
                    metric_type=metric,
                    metric_value=v["value"],
                    metric_name=f"{metric} ({t.get('num_fewshot', 0)}-shot)",
                )
            )
    for lang, s in results.get("bits_per_byte", {}).items():
        out.append(
            EvalResult(
                task_type="text-generation",
                task_name="language modelling",
                dataset_type=f"heldout-{lang}",
                dataset_name=f"held-out text ({lang})",
                metric_type="bits_per_byte",
                metric_value=s["bits_per_byte"],
            )
        )
    return out


def judge_results(judge: dict | None) -> list[EvalResult]:
    """MT-Bench-style averages per language (all categories, both turns) from the `judge` stage."""
    out = []
    for lang, r in (judge or {}).get("languages", {}).items():
        avg = r.get("single", {}).get("table", {}).get("all", {}).get("average")
        if avg is not None:
            out.append(
                EvalResult(
                    task_type="text-generation",
                    task_name="MT-Bench-style judge",
                    dataset_type=f"judge-{lang}",
                    dataset_name=f"judge questions ({lang})",
                    metric_type="judge_score",
                    metric_value=avg,
                    metric_name=f"score 1-10 by {judge['judge']['model']}",
                )
            )
    return out


def side_by_side(results: dict) -> list[str]:
    """Benchmarks x metrics as rows, languages as columns: EN and DE next to each other."""
    tasks = results.get("tasks", [])
    langs = sorted({t.get("language", "?") for t in tasks})
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for t in tasks:
        for metric, v in t["metrics"].items():
            cells.setdefault((t.get("benchmark", t["task"]), metric), {})[t.get("language", "?")] = f"{v['value']:.3f}"
    lines = ["| benchmark | metric | " + " | ".join(langs) + " |", "|---|---|" + "---:|" * len(langs)]
    lines += [
        f"| {b} | {m} | " + " | ".join(row.get(lang, "–") for lang in langs) + " |" for (b, m), row in cells.items()
    ]
    bpb = results.get("bits_per_byte", {})
    if bpb:
        lines += [
            "",
            "| held-out text | " + " | ".join(bpb) + " |",
            "|---|" + "---:|" * len(bpb),
            "| bits per byte | " + " | ".join(f"{s['bits_per_byte']:.4f}" for s in bpb.values()) + " |",
        ]
    return lines


def gain_forgetting(manifest: dict) -> list[str]:
    """Before -> after per language and measure, from adaptation and from eval's baseline comparison
    (rows of `lmforge.eval.compare`: a target-language change reads as gain, a source one as forgetting)."""
    lines = []
    for stage in ("adapt", "eval"):
        rows = manifest.get("stages", {}).get(stage, {}).get("comparison") or []
        if not rows:
            continue
        lines += [
            f"Gain and forgetting, from the `{stage}` stage:",
            "",
            "| measure | language | before | after | change | 95% CI | p | reading |",
            "|---|---|---:|---:|---:|---|---:|---|",
        ]
        for r in rows:
            ci = r.get("ci95") or ["–", "–"]
            lines.append(
                f"| {r['name']} {r['metric']} | {r['language']} | {_num(r['baseline'])} | {_num(r['model'])} | "
                f"{_num(r['delta'])} | [{_num(ci[0])}, {_num(ci[1])}] | {_num(r.get('p_value'))} | "
                f"{r.get('reading', '')} |"
            )
        lines.append("")
    return lines


def _judge_lines(manifest: dict) -> list[str]:
    from lmforge.judge import score_table

    judge = manifest.get("stages", {}).get("judge")
    if not judge:
        return []
    return [
        f"Graded MT-Bench-style by `{judge['judge']['model']}` (1–10; model `{judge['model_id']}`):",
        "",
        *score_table(judge),
        "",
    ]


def _num(x) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else str(x if x is not None else "–")


def build_model_card(facts: dict) -> ModelCard:
    """`facts` is what release.build gathered: name, licences, languages, manifest, results, mof ..."""
    manifest, results, cfg = facts["manifest"], facts["results"], facts["config"]
    base = facts.get("base_model")
    data = ModelCardData(
        model_name=facts["name"],
        language=facts["languages"] or None,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=["lmforge", facts["architecture"].lower(), *facts["treatments"]],
        datasets=cfg.datasets or None,
        eval_results=(eval_results(results) + judge_results(manifest.get("stages", {}).get("judge"))) or None,
        base_model=base if base and looks_like_hub_id(base) else None,
        base_model_relation="finetune" if base and looks_like_hub_id(base) else None,
        **(hub_license(facts["licenses"]["weights"]) if facts["licenses"].get("weights") else {}),
    )
    stages = manifest.get("stages", {})
    wall = sum(s.get("wall_s", 0) for s in stages.values())
    hw = manifest.get("hardware", {})
    body = [
        f"# {facts['name']}",
        "",
        f"A {facts['params'] / 1e6:.1f}M-parameter {facts['architecture']} language model "
        f"({', '.join(facts['languages']) or 'languages not recorded'}), built end to end with lmforge: "
        f"{', '.join(facts['treatments']) or 'no training recorded'}. Model Openness Framework: "
        f"**{facts['mof']['class_name']}** (see `mof.yaml`).",
        "",
        "## Training",
        "",
        *[f"- **{name}**: {_stage_line(name, s)}" for name, s in stages.items()],
        *([f"- Base model: `{base}`"] if base else []),
        "",
        "Data sources, filters and counts: `DATA_CARD.md`. Every input's hash, the seeds and the data order: "
        "`provenance.json`.",
        "",
        "## Evaluation",
        "",
        _evaluated_line(results, facts.get("source")),
        "",
        *side_by_side(results),
        "",
        *gain_forgetting(manifest),
        *_judge_lines(manifest),
        "## Intended use",
        "",
        cfg.intended_use
        or "Research and education: studying how a small model learns, adapts to a new language and forgets. "
        "Not for decisions about people, not for facts that matter.",
        "",
        "## Limitations",
        "",
        cfg.limitations
        or "A small model trained on little data: it makes things up, repeats itself and knows little. Its "
        "evaluation figures come from the small task samples named above, not from full benchmarks.",
        "",
        "## How to use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f'tok = AutoTokenizer.from_pretrained("{cfg.hub_repo or "path/to/release"}")',
        f'model = AutoModelForCausalLM.from_pretrained("{cfg.hub_repo or "path/to/release"}")',
        "```",
        "",
        "Serving: `lmforge serve <release>` (OpenAI API and web chat), or `vllm serve <release>` on a GPU. "
        "llama.cpp, Ollama, LM Studio: the GGUF files next to the weights (`lmforge export gguf`).",
        "",
        "## Compute",
        "",
        f"{wall / 3600:.2f} hours of wall time over all stages on {hw.get('cpu_cores', '?')} CPU cores"
        f"{', GPUs: ' + ', '.join(hw['gpus']) if hw.get('gpus') else ' (no GPU)'}, {hw.get('platform', '')}. "
        f"Code commit `{manifest.get('code_commit', 'unknown')}`.",
        "",
        "## Licences",
        "",
        *[f"- {kind}: {lic or 'not declared'}" for kind, lic in facts["licenses"].items() if kind != "components"],
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n")


def _evaluated_line(results: dict, source: str | None) -> str:
    if not results:
        return "The run has no `eval` stage: no evaluation figures."
    evaluated = Path(results.get("model", "?"))
    line = f"English and German side by side, from the run's `eval` stage on `{evaluated.name}`"
    if source and evaluated.resolve() != Path(source).resolve():
        return line + (
            f". These figures are of that model, not of the released weights (`{Path(source).name}`, "
            "made after it): evaluate the released model to publish its own."
        )
    return line + ", the released weights."


def _stage_line(name: str, s: dict) -> str:
    keys = {
        "pretrain": ("steps", "tokens", "params", "final_loss"),
        "curate": ("read", "kept"),
        "sft": ("conversations", "heldout_loss_before", "heldout_loss_after"),
        "tokenizer": ("vocab_size",),
        "tokenize": ("tokens",),
    }.get(name, ())
    facts = [
        f"{k.replace('_', ' ')} {s[k]:,}" if isinstance(s[k], int) else f"{k.replace('_', ' ')} {_num(s[k])}"
        for k in keys
        if k in s and not isinstance(s[k], (dict, list))
    ]
    return ", ".join(facts + [f"{s.get('wall_s', 0):.0f} s"])
