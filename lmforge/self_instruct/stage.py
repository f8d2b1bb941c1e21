"""`lmforge self-instruct`: grow an instruction set from a few seed tasks through any
OpenAI-compatible endpoint (Self-Instruct, Wang et al. 2023): each request shows 8 demonstrations
(6 seeds, 2 already generated) and asks for more; new instructions pass named filters (ROUGE-L
novelty, blacklist, length, punctuation, language); each kept one gets an instance (input first,
output first for classification tasks) that passes its own filters. Output: Alpaca JSONL for `sft`."""

import json
import random
import time
from collections import Counter
from pathlib import Path

from typing_extensions import TypedDict

from lmforge.endpoint import EndpointClient, EndpointError
from lmforge.errors import ConfigError, DataError
from lmforge.recipe import SelfInstructConfig
from lmforge.rundir import atomic_write_text, record_stage, write_report_section
from lmforge.self_instruct.filters import instance_problem, instruction_problem
from lmforge.self_instruct.prompts import generation_prompt, parse_instance, parse_numbered, says_yes, texts
from lmforge.self_instruct.rouge import words

NEW_PER_REQUEST = 8


def read_seeds(path: str | Path) -> list[dict]:
    """Self-Instruct's seed layout: {"instruction", "instances": [{"input", "output"}], "is_classification"}."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"self_instruct.seeds: {path}: no such file")
    seeds = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row.get("instruction"), str) or not isinstance(row.get("instances"), list):
                raise ValueError("needs 'instruction' and 'instances'")
        except (ValueError, AttributeError) as e:
            raise DataError(f"{path}:{n}: not a seed task ({e})") from None
        seeds.append(row)
    if not seeds:
        raise DataError(f"{path}: no seed tasks")
    return seeds


class SelfInstructResult(TypedDict):
    output: str
    generated: int
    kept_instructions: int
    dropped: dict[str, int]  # reason -> candidates
    instances_kept: int
    instances_dropped: dict[str, int]
    similarity: list[int]  # the ROUGE-L histogram, 10 bins over [0, 1]
    verbs: list[tuple[str, int]]
    endpoint: dict


def run_self_instruct_stage(cfg: SelfInstructConfig, run_dir: str | Path) -> SelfInstructResult:
    started = time.time()
    run_dir = Path(run_dir)
    seeds = read_seeds(Path(cfg.seeds))
    out = Path(cfg.out) if cfg.out else run_dir / "self_instruct"
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed)
    client = EndpointClient(cfg.endpoint, cache_path=out / "cache.jsonl")
    params = {"temperature": cfg.endpoint.temperature, "max_tokens": cfg.endpoint.max_tokens}
    pool = [words(s["instruction"]) for s in seeds]
    kept: list[dict] = []
    dropped, similarities, candidates = Counter(), [], []
    try:
        for _ in range(cfg.rounds):
            if len(kept) >= cfg.target:
                break
            prompts = []
            for _ in range(cfg.prompts_per_round):
                demos = rng.sample([s["instruction"] for s in seeds], min(cfg.seed_demos, len(seeds)))
                demos += rng.sample([k["instruction"] for k in kept], min(cfg.generated_demos, len(kept)))
                rng.shuffle(demos)
                prompts.append((generation_prompt(demos, NEW_PER_REQUEST, cfg.language), len(demos) + 1))
            replies = client.map(
                lambda p: client.chat([{"role": "user", "content": p[0]}], **params),
                prompts,
                progress="self-instruct: instructions",
            )
            for (_, first), reply in zip(prompts, replies):
                if isinstance(reply, EndpointError):
                    dropped[f"endpoint: {reply.reason}"] += 1
                    continue
                if isinstance(reply, Exception):
                    raise reply
                for text in parse_numbered(reply.text, first):
                    reason, best = instruction_problem(text, pool, cfg.language, cfg)
                    candidates.append({"instruction": text, "dropped": reason, "max_rouge_l": round(best, 4)})
                    if reason:
                        dropped[reason] += 1
                        continue
                    similarities.append(best)
                    pool.append(words(text))
                    kept.append({"instruction": text})
                    if len(kept) >= cfg.target:
                        break
        client.check_answered("self-instruct")
        records, instance_dropped = _instances(client, kept, cfg, params)
    finally:
        client.close()
    atomic_write_text(out / "instructions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    atomic_write_text(out / "candidates.jsonl", "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in candidates))
    summary = {
        "output": str(out / "instructions.jsonl"),
        "generated": len(candidates),
        "kept_instructions": len(kept),
        "dropped": dict(dropped),
        "instances_kept": len(records),
        "instances_dropped": dict(instance_dropped),
        "similarity": _histogram(
            [c["max_rouge_l"] for c in candidates if c["dropped"] in (None, "too similar (ROUGE-L)")]
        ),
        "verbs": Counter(_verb(r["instruction"]) for r in records).most_common(15),
        "endpoint": client.accounting(),
    }
    plots = _plots(run_dir, candidates, records)
    record_stage(run_dir, "self_instruct", cfg.model_dump(), [Path(cfg.seeds)], cfg.seed, started, summary)
    write_report_section(run_dir, "self_instruct", self_instruct_report(summary, plots))
    return summary


def _instances(client, kept: list[dict], cfg, params) -> tuple[list[dict], Counter]:
    """Classification or not, then one instance per kept instruction (output first for classification)."""
    t = texts(cfg.language)

    def one(item):
        cls = says_yes(
            client.chat([{"role": "user", "content": t["classify"].format(**item)}], temperature=0, max_tokens=4).text
        )
        prompt = t["instance_cls" if cls else "instance"].format(**item)
        return cls, client.chat([{"role": "user", "content": prompt}], **params).text

    results = client.map(one, kept, progress="self-instruct: instances")
    records, dropped, seen = [], Counter(), set()
    for item, result in zip(kept, results):
        if isinstance(result, EndpointError):
            dropped[f"endpoint: {result.reason}"] += 1
            continue
        if isinstance(result, Exception):
            raise result
        cls, text = result
        instance = parse_instance(text, cfg.language)
        reason = "unparseable instance" if instance is None else instance_problem(instance, seen)
        if reason:
            dropped[reason] += 1
            continue
        seen.add((instance["input"], instance["output"]))
        records.append(
            {
                "instruction": item["instruction"],
                "input": instance["input"],
                "output": instance["output"],
                "is_classification": cls,
                "language": cfg.language,
            }
        )
    return records, dropped


def _verb(instruction: str) -> str:
    w = words(instruction)
    return w[0] if w else "?"


def _histogram(values: list[float], bins: int = 10) -> list[int]:
    counts = [0] * bins
    for v in values:
        counts[min(int(v * bins), bins - 1)] += 1
    return counts


def _plots(run_dir: Path, candidates: list[dict], records: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = run_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.hist([c["max_rouge_l"] for c in candidates if c["max_rouge_l"] or c["dropped"] is None], bins=20, range=(0, 1))
    a.set_xlabel("highest ROUGE-L against the pool")
    a.set_ylabel("candidate instructions")
    a.set_title("novelty of generated instructions")
    verbs = Counter(_verb(r["instruction"]) for r in records).most_common(15)
    b.barh([v for v, _ in verbs][::-1], [n for _, n in verbs][::-1])
    b.set_title("first words of the kept instructions")
    fig.tight_layout()
    fig.savefig(plots / "self_instruct.png", dpi=100)
    plt.close(fig)
    return ["plots/self_instruct.png"]


def self_instruct_report(s: dict, plots: list[str]) -> str:
    e = s["endpoint"]
    lines = [
        "## Self-Instruct",
        "",
        f"{s['generated']:,} instructions generated through `{e['endpoint']}` "
        f"(model `{e['model']}`), {s['kept_instructions']:,} kept; {s['instances_kept']:,} with an instance "
        f"written to `{Path(s['output']).name}` (Alpaca JSONL, ready for `sft`).",
        "",
        "| dropped because | instructions |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v} |" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1])] or ["| – | 0 |"]
    if s["instances_dropped"]:
        lines += ["", "| instance dropped because | count |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in s["instances_dropped"].items()]
    lines += ["", f"ROUGE-L histogram (0–1 in tenths): {s['similarity']}", ""]
    lines += [f"![self-instruct]({p})" for p in plots]
    lines += [
        "",
        f"Endpoint: {e['requests']:,} requests, {e['answered_from_cache']:,} from the cache, {e['retries']:,} "
        f"retries, failures {e['failures'] or 'none'}.",
    ]
    return "\n".join(lines)
