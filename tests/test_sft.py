"""Instruction tuning: format readers, mixing, the loss mask, LoRA / LLaMA-Adapter, SFT, chat."""

import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest
import torch

from lmforge.chat.encoding import IGNORE, encode
from lmforge.chat.formats import read_conversations
from lmforge.errors import DataError
from lmforge.recipe import SftConfig, SftDataset
from lmforge.sft import mix_datasets
from tests.conftest import ROOT, lmforge, pretrain_tiny, write_jsonl

INSTR = ROOT / "examples" / "instructions"


def test_per_record_formats_become_messages(tmp_path):
    rows = [
        {"instruction": "Sum up.", "input": "A text.", "output": "Short."},  # alpaca
        {"instruction": "Name it.", "context": "", "response": "A cat.", "category": "open_qa"},  # dolly
        {
            "conversations": [
                {"from": "system", "value": "Be kind."},
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hello!"},
            ],
            "language": "en",
        },  # sharegpt
        {
            "messages": [
                {"role": "user", "content": "Hallo"},
                {"role": "assistant", "content": "Hi!"},
                {"role": "user", "content": "Wie geht's?"},
                {"role": "assistant", "content": "Gut."},
            ],
            "language": "de",
        },  # tulu
    ]
    convs, skipped, _ = read_conversations(write_jsonl(tmp_path / "mixed.jsonl", rows))
    assert not skipped
    assert convs[0]["messages"] == [
        {"role": "user", "content": "Sum up.\n\nA text."},
        {"role": "assistant", "content": "Short."},
    ]
    assert convs[1]["messages"][0]["content"] == "Name it." and convs[1]["messages"][1]["content"] == "A cat."
    assert [m["role"] for m in convs[2]["messages"]] == ["system", "user", "assistant"]
    assert len(convs[3]["messages"]) == 4 and convs[3]["language"] == "de"
    assert convs[3]["where"].endswith("mixed.jsonl:4")


def test_oasst1_tree_keeps_the_best_ranked_reply_per_turn_and_every_follow_up(tmp_path):
    def msg(i, parent, role, text, rank=None):
        return {"message_id": i, "parent_id": parent, "role": role, "text": text, "lang": "de", "rank": rank}

    rows = [
        msg("p1", None, "prompter", "Frage?"),
        msg("a1", "p1", "assistant", "schlechte Antwort", 1),
        msg("a2", "p1", "assistant", "beste Antwort", 0),
        msg("p2", "a2", "prompter", "Nachfrage eins"),
        msg("p3", "a2", "prompter", "Nachfrage zwei"),
        msg("a3", "p2", "assistant", "Antwort eins", 0),
        msg("a4", "p3", "assistant", "Antwort zwei", 0),
        msg("x1", "a1", "prompter", "unter der schlechten Antwort"),
        msg("x2", "x1", "assistant", "nie", 0),
    ]
    convs, skipped, _ = read_conversations(write_jsonl(tmp_path / "oasst.jsonl", rows), "oasst1")
    texts = sorted([m["content"] for m in c["messages"]] for c in convs)
    assert texts == [
        ["Frage?", "beste Antwort", "Nachfrage eins", "Antwort eins"],
        ["Frage?", "beste Antwort", "Nachfrage zwei", "Antwort zwei"],
    ]
    assert all(c["language"] == "de" for c in convs) and not skipped
    with pytest.raises(DataError, match=r"oasst.jsonl:1: OASST1 message whose parent is not in the file"):
        read_conversations(write_jsonl(tmp_path / "oasst.jsonl", [msg("q", "gone", "assistant", "?")]), "oasst1")


def test_unusable_records_are_counted_with_file_and_line(tmp_path):
    rows = [
        {"instruction": "a", "output": "b"},
        {"messages": [{"role": "user", "content": "only a question"}]},
        {"title": "not instruction data"},
    ]
    convs, skipped, where = read_conversations(write_jsonl(tmp_path / "bad.jsonl", rows))
    assert len(convs) == 1 and skipped == {"no assistant turn": 1, "unreadable record": 1}
    assert any(w.endswith("bad.jsonl:2: no assistant turn") for w in where)
    assert any("bad.jsonl:3: unknown record shape" in w for w in where)
    with pytest.raises(DataError, match="unknown instruction format 'csv'"):
        read_conversations(tmp_path / "bad.jsonl", "csv")


def test_mixing_weights_and_language_filter():
    sets = [
        SftDataset(path=str(INSTR / "alpaca_en.jsonl"), weight=0.5),
        SftDataset(path=str(INSTR / "chat_de.jsonl"), weight=2.0),
    ]
    convs, _, _ = mix_datasets(sets, seed=0)
    langs = [c["language"] for c in convs]
    assert langs.count("en") == 300 and langs.count("de") == 1200
    assert [c["where"] for c in mix_datasets(sets, seed=0)[0]] == [c["where"] for c in convs]
    only_de, skipped, _ = mix_datasets(
        [
            SftDataset(path=str(INSTR / "alpaca_en.jsonl"), languages=["de"]),
            SftDataset(path=str(INSTR / "chat_de.jsonl"), languages=["de"]),
        ],
        0,
    )
    assert len(only_de) == 600 and skipped["other language"] == 600


def test_labels_are_exactly_the_assistant_turns(tiny_data):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_data / "tokenizer")
    messages = [
        {"role": "system", "content": "Sei knapp."},
        {"role": "user", "content": "Wo ist der Brief?"},
        {"role": "assistant", "content": "Im Garten."},
        {"role": "user", "content": "Und wer?"},
        {"role": "assistant", "content": "Der Bäcker."},
    ]
    ids, labels = encode(tok, messages)
    assert len(ids) == len(labels) and ids[0] == tok.eos_token_id
    kept = [i for i, l in zip(ids, labels) if l != IGNORE]
    assert all(l in (IGNORE, i) for i, l in zip(ids, labels))
    assert tok.decode(kept) == "Im Garten.<|im_end|>\nDer Bäcker.<|im_end|>\n"
    # every masked token is markup, system or user text
    masked = tok.decode([i for i, l in zip(ids, labels) if l == IGNORE])
    assert "Wo ist der Brief?" in masked and "Sei knapp." in masked and "Garten" not in masked


def test_tool_use_trains_on_the_call_and_the_answer_not_the_result(tiny_data):
    """The shipped tool-use sample: tools listed in the system turn, the assistant's call and its
    final answer labelled, the tool's result and the schemas masked; a DPO pair whose answers
    are calls encodes through the same template."""
    from transformers import AutoTokenizer

    from lmforge.chat.encoding import encode_all
    from lmforge.chat.tools import parse_calls
    from lmforge.dpo.data import encode_pairs, read_pairs
    from lmforge.recipe import PreferenceDataset

    tok = AutoTokenizer.from_pretrained(tiny_data / "tokenizer")
    convs, skipped, _ = read_conversations(INSTR / "tools.jsonl")
    assert len(convs) == 120 and not skipped and all(c["tools"] for c in convs)
    called = next(c for c in convs if len(c["messages"]) == 4)
    ids, labels = encode(tok, called["messages"], tools=called["tools"])
    kept = tok.decode([i for i, l in zip(ids, labels) if l != IGNORE])
    masked = tok.decode([i for i, l in zip(ids, labels) if l == IGNORE])
    call, result, answer = called["messages"][1:]
    text, calls = parse_calls(kept.split("<|im_end|>")[0], "hermes")
    assert text == "" and calls[0].name == call["tool_calls"][0]["function"]["name"]
    assert calls[0].arguments == call["tool_calls"][0]["function"]["arguments"]
    assert answer["content"] in kept and result["content"] not in kept
    assert result["content"] in masked and '"name": "get_weather"' in masked  # the schemas the model is shown
    examples, counts, _ = encode_all(tok, convs, 1024, "skip")  # the tiny tokenizer spends ~700 on the schemas
    assert len(examples) == 120 and not counts
    pair = {
        "prompt": called["messages"][:1],
        "chosen": [call],
        "rejected": "I cannot look that up.",
        "tools": called["tools"],
    }
    path = write_jsonl(tiny_data.parent / "tool_pairs.jsonl", [pair])
    pairs, _, _ = read_pairs(PreferenceDataset(path=str(path)))
    rows, _, _ = encode_pairs(tok, pairs, 1024, "skip")
    chosen_ids, chosen_labels = rows[0]["chosen"]
    assert "<tool_call>" in tok.decode([i for i, l in zip(chosen_ids, chosen_labels) if l != IGNORE])


@pytest.fixture
def base_run(tiny_run):
    return pretrain_tiny(tiny_run, "model.max_position_embeddings=128")


def test_lora_trains_only_the_adapter_and_merges_exactly(base_run):
    from lmforge.chat.encoding import encode_all
    from lmforge.models import load_model_and_tokenizer
    from lmforge.sft.train import train_sft
    from lmforge.train.tuning import attach_method

    model, tok = load_model_and_tokenizer(base_run)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = SftConfig(method="lora", lora_rank=4, epochs=1, batch_size=8, lr=5e-3, log_every=100)
    convs, _, _ = mix_datasets([SftDataset(path=str(INSTR / "chat_de_heldout.jsonl"))], 0)
    examples, _, _ = encode_all(tok, convs, 128, "skip")
    peft_model = attach_method(model, cfg, "sft")
    lora_before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if "lora_" in n}
    train_sft(peft_model, examples, cfg, 0, tok.pad_token_id, None)
    base_now = peft_model.get_base_model().state_dict()
    for k, v in before.items():  # base weights untouched (peft wraps the targets as base_layer)
        key = next(n for n in base_now if n.replace(".base_layer", "") == k)
        assert torch.equal(base_now[key], v), k
    changed = [n for n, p in peft_model.named_parameters() if "lora_B" in n and not torch.equal(p, lora_before[n])]
    assert len(changed) == len([n for n in lora_before if "lora_B" in n]) > 0
    ids = torch.tensor([examples[0][0]])
    with torch.no_grad():
        adapted = peft_model(input_ids=ids).logits
        merged = peft_model.merge_and_unload()(input_ids=ids).logits
    assert torch.allclose(adapted, merged, atol=1e-5)


@pytest.mark.slow
def test_sft_lowers_heldout_loss_and_chat_works(base_run, tmp_path):
    recipe = tmp_path / "sft.toml"
    recipe.write_text(f"""
[sft]
method = "full"
epochs = 1
batch_size = 16
lr = 2e-3
sample_prompts = ["Beschreibe das Brot in einem Satz."]
[[sft.datasets]]
path = "{INSTR / "chat_de.jsonl"}"
[[sft.datasets]]
path = "{INSTR / "alpaca_en.jsonl"}"
weight = 0.5
[[sft.heldout]]
path = "{INSTR / "chat_de_heldout.jsonl"}"
""")
    out = lmforge("sft", str(recipe), "--run-dir", str(base_run)).stdout
    s = json.loads((base_run / "manifest.json").read_text())["stages"]["sft"]
    assert s["heldout_loss_after"]["de"] < s["heldout_loss_before"]["de"] - 0.5
    assert (
        s["conversations"] + sum(s["skipped"].values()) == 900
        and "assistant:" in out
        and "## SFT" in (base_run / "report.md").read_text()
    )
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(base_run / "chat")  # plain transformers loads the chat model

    once = lmforge(
        "chat",
        str(base_run),
        "--prompt",
        "Beschreibe das Brot in einem Satz.",
        "--temperature",
        "0",
        "--max-new-tokens",
        "12",
    )
    piped = subprocess.run(
        [sys.executable, "-m", "lmforge", "chat", str(base_run), "--temperature", "0", "--max-new-tokens", "12"],
        input="Beschreibe das Brot in einem Satz.",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    # greedy decoding: the piped prompt gets exactly the --prompt answer (a tiny model's may be blank lines)
    assert piped.returncode == 0 and piped.stdout == once.stdout and once.stdout.endswith("\n")

    # the interactive chat, driven through a pseudo-terminal
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmforge", "chat", str(base_run), "--temperature", "0", "--max-new-tokens", "8"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=ROOT,
    )
    os.close(follower)

    def read_until(marker: str, timeout: float = 120) -> str:
        seen, end = "", time.time() + timeout
        while marker not in seen and time.time() < end:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    seen += os.read(leader, 4096).decode(errors="replace")
                except OSError:
                    break
        assert marker in seen, seen
        return seen

    read_until("you> ")
    os.write(leader, "Beschreibe das Brot in einem Satz.\n".encode())
    assert "assistant> " in read_until("you> ")
    os.write(leader, b"/reset\n")
    read_until("(conversation reset)")
    os.write(leader, b"/exit\n")
    assert proc.wait(timeout=60) == 0
    os.close(leader)


@pytest.mark.parametrize("method", ["adapter", "adapter_v2"])
def test_llama_adapter_v1_and_v2_save_an_adapter_that_the_run_loads(base_run, method):
    from lmforge.models import adapter_v2, load_model_and_tokenizer
    from lmforge.sft.stage import run_sft_stage

    cfg = SftConfig(
        method=method,
        adapter_len=4,
        adapter_layers=1,
        epochs=0.2,
        batch_size=8,
        lr=1e-2,
        datasets=[SftDataset(path=str(INSTR / "chat_de_heldout.jsonl"))],
    )
    summary = run_sft_stage(cfg, base_run, seed=0)
    adapter = base_run / "sft" / "adapter"
    assert (adapter / "adapter_config.json").exists() and not (base_run / "chat").exists()
    assert (adapter / adapter_v2.FILE).is_file() == (method == "adapter_v2")
    model, tok = load_model_and_tokenizer(base_run)  # the run resolves to its adapter, on its base
    assert type(model).__name__.startswith("Peft")
    assert tok.chat_template  # saved with the adapter
    gates = [p.detach() for n, p in model.named_parameters() if "adaption_gate" in n]
    assert gates and all(float(g.abs().sum()) > 0 for g in gates)  # zero-initialised gates were trained and kept
    counts = summary["method_params"]
    assert counts["adapter"] < counts["adapter_v2"] and summary["trainable_params"] == counts[method]
    assert "Trainable parameters by method on this base: LoRA" in (base_run / "report.md").read_text()
    if method == "adapter_v2":  # units folded into plain linears on load: trained shifts are biases now
        assert not any(isinstance(m, adapter_v2.ScaledLinear) for m in model.modules())
        q = model.base_model.model.model.layers[0].self_attn.q_proj
        assert q.bias is not None and float(q.bias.detach().abs().sum()) > 0


@pytest.mark.parametrize("method", ["full"])  # LoRA (with dropout): on 2 processes in tests/test_scale_out.py
def test_a_killed_run_resumes_to_the_same_weights(base_run, tmp_path, method):
    """kill -9 `lmforge sft` after a step checkpoint; the rerun continues from it and ends with the
    weights of a run that was never interrupted."""
    import signal
    import subprocess
    import sys
    import time

    import torch
    from safetensors.torch import load_file

    recipe = tmp_path / "sft.toml"
    recipe.write_text(
        f'[sft]\nmodel = "{base_run / "checkpoints" / "step-000008"}"\nmethod = "{method}"\nlr = 2e-3\n'
        f"batch_size = 4\nepochs = 1\ncheckpoint_every = 2\nlog_every = 1\nlora_dropout = 0.1\n"
        f'[[sft.datasets]]\npath = "{INSTR / "chat_de_heldout.jsonl"}"\n'
    )
    lmforge("sft", str(recipe), "--run-dir", str(tmp_path / "a"))
    args = [sys.executable, "-m", "lmforge", "sft", str(recipe), "--run-dir", str(tmp_path / "b")]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = tmp_path / "b" / "sft" / "resume" / "state.json"
    end = time.time() + 300
    while time.time() < end and not (state.is_file() and json.loads(state.read_text())["step"] >= 6):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "b" / "chat").exists()
    lmforge("sft", str(recipe), "--run-dir", str(tmp_path / "b"))
    s = json.loads((tmp_path / "b" / "manifest.json").read_text())["stages"]["sft"]
    assert s["resumed_from"] >= 6 and s["steps"] > s["resumed_from"]
    a, b = (
        load_file(tmp_path / "a" / "chat" / "model.safetensors"),
        load_file(tmp_path / "b" / "chat" / "model.safetensors"),
    )
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), diff  # bit-identical on CPU
    assert not (tmp_path / "b" / "sft" / "resume").exists()  # finished: nothing left to resume
