"""Release: MOF classes as the Model Openness Tool computes them, the model card and its model-index,
provenance and `release --verify`, GGUF export checked in llama.cpp, and bad input."""

import json
import shutil

import pytest

from lmforge.errors import LmforgeError
from lmforge.recipe import EvalConfig, LicensesConfig, ReleaseConfig
from lmforge.release.mof import COMPONENTS, classify
from tests.conftest import CORPUS, ROOT, free_port, lmforge, pretrain_tiny

TASKS = ROOT / "examples" / "tasks"
OPEN = {"code": "Apache-2.0", "data": "CC-BY-4.0", "documents": "CC-BY-4.0", "weights": "Apache-2.0"}


def constructed(tmp_path, drop: tuple[str, ...] = (), licences: dict | None = None) -> tuple[dict, object]:
    """Every MOF component as a file under `tmp_path`, licensed by content type."""
    lic = {**OPEN, **(licences or {})}
    tmp_path.mkdir(exist_ok=True)
    comps = {}
    for name, (kind, _) in COMPONENTS.items():
        path = tmp_path / name.replace(" ", "_")
        if name not in drop:
            path.write_text(name)
        key = (
            "weights"
            if name.startswith("Model parameters") or name == "Model metadata"
            else {"code": "code", "data": "data", "document": "documents"}[kind]
        )
        comps[name] = {"path": path.name, "license": lic[key]}
    return comps, tmp_path


def test_mof_classes_follow_the_model_openness_tool(tmp_path):
    comps, root = constructed(tmp_path)
    assert classify(comps, root)["class"] == "I"
    # a technical report stands in for the paper in classes III and II, not in class I
    comps, root = constructed(tmp_path / "a", drop=("Research paper",))
    r = classify(comps, root)
    assert r["class"] == "II" and r["missing"] == {"Class I (Open Science)": ["Research paper: not in the release"]}
    # no data card: class III fails, and the report names it (and the classes above inherit nothing)
    comps, root = constructed(tmp_path / "b", drop=("Data card",))
    r = classify(comps, root)
    assert r["class"] is None and r["class_name"] == "no MOF class"
    assert r["missing"]["Class III (Open Model)"] == ["Data card: not in the release"]
    assert r["components"]["Data card"]["status"] == "missing"
    # weights under a non-open licence: that component is invalid, class III fails on it
    comps, root = constructed(tmp_path / "c", licences={"weights": "CC-BY-NC-4.0"})
    r = classify(comps, root)
    assert r["components"]["Model parameters (Final)"]["status"] == "invalid licence"
    assert (
        r["class"] is None
        and "Model parameters (Final): licence CC-BY-NC-4.0 is not an open data licence"
        in r["missing"]["Class III (Open Model)"][0]
    )
    # licence kinds per content type: CC-BY-4.0 is open for documents and data, not for code
    comps, root = constructed(tmp_path / "d", licences={"code": "CC-BY-4.0"})
    r = classify(comps, root)
    assert r["components"]["Training code"]["status"] == "invalid licence"
    assert r["class"] is None  # the architecture is code too, so not even class III
    assert r["missing"]["Class III (Open Model)"] == [
        "Model architecture: licence CC-BY-4.0 is not an OSI-approved licence"
    ]
    assert r["components"]["Model card"]["status"] == "open"
    comps, root = constructed(tmp_path / "e", licences={"documents": "MIT"})  # OSI code licence on documents
    assert classify(comps, root)["components"]["Model card"]["status"] == "invalid licence"
    comps, root = constructed(tmp_path / "f", licences={"data": None})
    r = classify(comps, root)
    assert r["components"]["Datasets"]["status"] == "unlicensed" and r["class"] == "III"


@pytest.fixture
def released(tiny_run):
    """A tiny pretrained run with an eval stage, released with open licences."""
    from lmforge.eval import run_eval_stage
    from lmforge.release import build_release

    run_dir = pretrain_tiny(tiny_run)
    run_eval_stage(
        EvalConfig(
            tasks=[str(TASKS / "arc_sample_en.toml"), str(TASKS / "arc_sample_de.toml")],
            bpb_texts={"en": str(CORPUS / "en" / "heldout.jsonl"), "de": str(CORPUS / "de" / "heldout.jsonl")},
            max_docs=5,
        ),
        run_dir,
    )
    summary = build_release(ReleaseConfig(licenses=LicensesConfig(**OPEN), hub_repo="someone/tiny"), run_dir)
    return run_dir, summary


def test_release_folder_loads_and_its_card_holds_the_eval_figures(released):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, summary = released
    root = run_dir / "release"
    AutoModelForCausalLM.from_pretrained(root)
    AutoTokenizer.from_pretrained(root)
    card = ModelCard.load(root / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "text-generation" and {"de", "en"} <= set(data["language"])
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    want = {(t["task"], m): v["value"] for t in results["tasks"] for m, v in t["metrics"].items()}
    want |= {(f"heldout-{lang}", "bits_per_byte"): s["bits_per_byte"] for lang, s in results["bits_per_byte"].items()}
    got = {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert got == want  # every task, metric and language, exactly
    assert "| benchmark | metric | de | en |" in card.text and "## Intended use" in card.text
    assert "DATA_CARD.md" in card.text and "Documents read" not in card.text  # no curate stage in this run
    # 5 checkpoints of the tiny run, copied and indexed with their hashes
    index = json.loads((root / "checkpoints.json").read_text())
    assert [c["step"] for c in index] == [0, 1, 2, 4, 8] and all((root / c["path"]).is_dir() for c in index)
    mof = __import__("yaml").safe_load((root / "mof.yaml").read_text())
    assert mof["framework"]["name"] == "Model Openness Framework"
    assert {c["name"] for c in mof["release"]["components"]} >= {
        "Model architecture",
        "Model parameters (Final)",
        "Model card",
        "Data card",
        "Evaluation results",
    }
    assert all((root / c["component_path"]).exists() for c in mof["release"]["components"])
    # licences for all four content types, code copied, report present: Class II (no paper, no datasets)
    assert summary["mof_class"] == "Class II (Open Tooling)", summary["missing_for_next_class"]
    prov = json.loads((root / "provenance.json").read_text())
    assert prov["data_order"]["seed"] == 7 and prov["checkpoints"] == index
    assert prov["versions"]["torch"] and prov["code_commit"]


def test_verify_passes_then_names_the_changed_file(released):
    run_dir, _ = released
    root = run_dir / "release"
    assert "verified" in lmforge("release", "--verify", str(root)).stdout
    weights = root / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    proc = lmforge("release", "--verify", str(root), check=False)
    assert proc.returncode == 2 and "model.safetensors: changed" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    weights.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 1]))
    (root / "extra.txt").write_text("x")
    proc = lmforge("release", "--verify", str(root), check=False)
    assert "extra.txt: not listed in provenance.json" in proc.stderr


def test_gguf_export_matches_transformers_in_llama_cpp(released):
    from lmforge.export import export_gguf, verify_gguf

    run_dir, _ = released
    root = run_dir / "release"
    prompts = ["The harbour is", "Der alte Hafen", "In the morning the baker", "Am Abend kocht die Frau"]
    for kind in ("f32", "f16", "bf16", "q8_0", "q4_0"):
        info = export_gguf(root, run_dir / f"tiny-{kind}.gguf", kind)
        v = verify_gguf(info["path"], root, prompts)
        assert v["tokenization_identical"] == len(prompts), kind
        if kind in ("f32", "f16"):
            assert v["greedy_identical"] == len(prompts), (kind, v)
        if kind == "q8_0":
            assert v["top1_agreement"] >= 0.95, v
    # through the CLI on the run: files land next to the release and stay verifiable
    out = lmforge("export", "gguf", str(run_dir), "-t", "q8_0").stdout
    assert "tiny-q8_0.gguf" not in out and (root / f"{run_dir.name}-q8_0.gguf").is_file()
    assert "verified" in lmforge("release", "--verify", str(root)).stdout


def test_mistral_architecture_exports_too(released, tmp_path):
    from transformers import MistralConfig, MistralForCausalLM

    from lmforge.export import export_gguf, verify_gguf

    run_dir, _ = released
    root = run_dir / "release"
    vocab = __import__("transformers").AutoTokenizer.from_pretrained(root).__len__()
    import torch

    torch.manual_seed(0)
    model = MistralForCausalLM(
        MistralConfig(
            vocab_size=vocab,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            sliding_window=None,
            tie_word_embeddings=False,
        )
    )
    folder = tmp_path / "mistral"
    model.save_pretrained(folder)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(root / f, folder / f)
    info = export_gguf(folder, tmp_path / "mistral-f32.gguf", "f32")
    assert info["architecture"] == "MistralForCausalLM"
    v = verify_gguf(info["path"], folder, ["The harbour is", "Der alte Hafen"])
    assert v["greedy_identical"] == 2 and v["tokenization_identical"] == 2, v


def test_sentencepiece_style_vocabulary_exports_too(tmp_path):
    """Llama 2 / LeoLM / Mistral-7B-style tokenizers (BPE with byte fallback over "▁"-marked text):
    llama.cpp tokenizes as transformers does (bytes for unseen characters included), greedy output
    is identical, and lmforge reads the GGUF's vocabulary back as the same tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmforge.export import export_gguf, verify_gguf
    from lmforge.models import load_model_and_tokenizer
    from tests.tiny_models import sentencepiece_style_tokenizer

    texts = [
        json.loads(line)["text"]
        for lang in ("en", "de")
        for line in (CORPUS / lang / "train.jsonl").read_text().splitlines()[:200]
    ]
    tok = sentencepiece_style_tokenizer(texts)
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=96,
            bos_token_id=1,
            eos_token_id=2,
            tie_word_embeddings=False,
        )
    )
    folder = tmp_path / "llama2-style"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    info = export_gguf(folder, tmp_path / "spm-f32.gguf", "f32")
    assert info["tokenizer"] == "llama"
    prompts = ["The harbour is", "Der alte Hafen", "Grüße aus Köln, 25 € und 🙂!", "two  spaces\nand a line"]
    assert any(t.startswith("<0x") for p in prompts for t in tok.tokenize(p))  # byte fallback is exercised
    v = verify_gguf(info["path"], folder, prompts)
    assert v["tokenization_identical"] == len(prompts) and v["greedy_identical"] == len(prompts), v
    _, back = load_model_and_tokenizer(info["path"])
    assert [back(p).input_ids for p in prompts] == [tok(p).input_ids for p in prompts]


def test_exported_gguf_serves_through_the_llama_cpp_backend(released):
    import httpx

    from tests.conftest import LiveServer

    run_dir, _ = released
    lmforge("export", "gguf", str(run_dir), "-t", "f16")
    server = LiveServer(str(run_dir / "release" / f"{run_dir.name}-f16.gguf"), "--backend", "llama.cpp")
    try:
        r = httpx.post(
            server.url + "/v1/completions",
            json={"prompt": "The harbour is", "max_tokens": 5, "temperature": 0},
            timeout=60,
        )
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] >= 1
    finally:
        server.stop()


def test_bad_input_gets_one_line_errors(released, tmp_path, tiny_run):
    from lmforge.export import export_gguf
    from lmforge.release import build_release

    run_dir, _ = released
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(LmforgeError, match="the run has no model to release"):
        build_release(ReleaseConfig(), empty)
    with pytest.raises(LmforgeError, match="'Llama-2' is not a known SPDX licence id"):
        build_release(ReleaseConfig(licenses=LicensesConfig(weights="Llama-2")), run_dir)
    with pytest.raises(LmforgeError, match="'Weights' is not an MOF component"):
        build_release(ReleaseConfig(licenses=LicensesConfig(components={"Weights": "MIT"})), run_dir)
    with pytest.raises(LmforgeError, match="release.research_paper: .*paper.pdf: no such file"):
        build_release(ReleaseConfig(research_paper=str(tmp_path / "paper.pdf")), run_dir)
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=512)).save_pretrained(gpt2)
    shutil.copy(run_dir / "release" / "tokenizer.json", gpt2 / "tokenizer.json")
    shutil.copy(run_dir / "release" / "tokenizer_config.json", gpt2 / "tokenizer_config.json")
    with pytest.raises(
        LmforgeError, match="GGUF export supports Gemma2ForCausalLM, .*, SmolLM3ForCausalLM, not GPT2LMHeadModel"
    ):
        export_gguf(gpt2, tmp_path / "x.gguf", "f16")
    # the Hub unreachable (nothing listens at the endpoint): one line naming the Hub
    proc = lmforge(
        "release",
        str(run_dir),
        "--push",
        "someone/tiny",
        check=False,
        env={"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_TOKEN": "hf_test"},
    )
    assert proc.returncode == 2 and "could not push to the Hugging Face Hub (someone/tiny)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
