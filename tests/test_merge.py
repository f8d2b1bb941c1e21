"""Model merging (lmforge/merge): each method on constructed tensors against hand-computed results,
then over real HF folders: a model merged with itself is itself, task arithmetic at weight 0/1
gives either input, the chat vector leaves the rows of added tokens as the adapted model has them,
and bad inputs fail in one line."""

import json

import pytest
import torch
from safetensors.torch import load_file

from lmforge.errors import ConfigError
from lmforge.merge import merge_folders, methods, run_merge_stage
from lmforge.merge.tensors import ShardWriter, Tensors
from lmforge.recipe import MergeConfig, SftDataset
from tests.conftest import ROOT, lmforge
from tests.tiny_models import tiny_llama

T = torch.tensor


def test_task_arithmetic_at_weight_0_and_1_gives_either_input():
    base, model = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(methods.task_arithmetic(base, [model], [0.0]), base)
    assert torch.allclose(methods.task_arithmetic(base, [model], [1.0]), model, atol=1e-6)
    two = methods.task_arithmetic(base, [model, 2 * model], [0.5, 0.25])  # base + 0.5τ₁ + 0.25τ₂
    assert torch.allclose(two, base + 0.5 * (model - base) + 0.25 * (2 * model - base), atol=1e-6)


def test_linear_is_the_weighted_average():
    assert torch.allclose(methods.linear([T([1.0, 2.0]), T([3.0, 6.0])], [1.0, 3.0]), T([2.5, 5.0]))
    x = torch.randn(5)
    assert torch.allclose(methods.linear([x, x, x], [0.2, 0.3, 0.5]), x, atol=1e-6)


def test_slerp_follows_the_arc_and_its_ends():
    a, b = T([1.0, 0.0]), T([0.0, 2.0])  # orthogonal: Ω = π/2
    assert torch.allclose(methods.slerp(a, b, 0.5), T([2**-0.5, 2 * 2**-0.5]), atol=1e-6)
    assert torch.allclose(methods.slerp(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(methods.slerp(a, b, 1.0), b, atol=1e-6)
    c = T([[1.0, 1.0], [1.0, 1.0]])  # parallel: linear interpolation, no division by sin 0
    assert torch.allclose(methods.slerp(c, 2 * c, 0.5), 1.5 * c)


def test_ties_trims_elects_signs_and_averages_the_agreeing_entries():
    base = T([10.0, 10.0, 10.0, 10.0])
    m1 = base + T([3.0, -1.0, 0.5, 2.0])  # trimmed to its 2 largest: [3, 0, 0, 2]
    m2 = base + T([-2.0, -2.0, 1.0, 0.1])  # [-2, -2, 0, 0]
    # signs of the sum [1, -2, 0, 2]: + - 0 +; entry 0 keeps m1's 3 only, entry 1 m2's -2 only
    assert torch.allclose(methods.ties(base, [m1, m2], [1.0, 1.0], 0.5), base + T([3.0, -2.0, 0.0, 2.0]))
    # weights scale the vectors, and the agreeing entries average by weight: entry 3 = (2·1 + 4·1)/2
    m3 = base + T([0.0, 0.0, 0.0, 4.0])
    assert torch.allclose(
        methods.ties(base, [m1, m3], [1.0, 1.0], 1.0), base + T([3.0, -1.0, 0.5, 3.0])
    )  # density 1: nothing trimmed
    assert torch.equal(methods.trim(T([1.0, -5.0, 3.0]), 1 / 3), T([0.0, -5.0, 0.0]))


def test_dare_drops_and_rescales_to_keep_the_expectation():
    base = torch.zeros(20_000)
    model = torch.full((20_000,), 0.3)
    assert torch.allclose(methods.dare(base, [model], [1.0], 1.0, torch.Generator().manual_seed(0)), model)
    out = methods.dare(base, [model], [1.0], 0.25, torch.Generator().manual_seed(0))
    kept = out != 0
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1.2))  # τ / density
    assert abs(kept.float().mean().item() - 0.25) < 0.02
    assert abs(out.mean().item() - 0.3) < 0.03  # the task vector in expectation
    again = methods.dare(base, [model], [1.0], 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_chat_vector_adds_to_the_original_rows_only():
    onto, base, chat = torch.ones(5, 2), torch.zeros(3, 2), torch.full((3, 2), 0.5)
    out = methods.chat_vector(onto, base, chat)
    assert torch.equal(out[:3], torch.full((3, 2), 1.5)) and torch.equal(out[3:], torch.ones(2, 2))


def test_shards_round_trip_with_their_index(tmp_path):
    from transformers import AutoModelForCausalLM

    model = tiny_llama(tie=False)
    writer = ShardWriter(tmp_path, shard_bytes=20_000)
    for name, t in model.state_dict().items():
        writer.add(name, t)
    writer.finish()
    assert len(list(tmp_path.glob("model-*-of-*.safetensors"))) > 2
    model.config.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    assert Tensors(tmp_path).names() == sorted(model.state_dict())


@pytest.fixture(scope="module")
def tok(tiny_data):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_data / "tokenizer")


def folder(path, tok, seed: int, vocab: int | None = None, **over):
    torch.manual_seed(seed)
    model = tiny_llama(vocab=vocab or len(tok), tie=False, **over)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def weights(path):
    return load_file(str(path / "model.safetensors"))


def test_a_model_merged_with_itself_is_itself(tok, tmp_path):
    a = folder(tmp_path / "a", tok, 1)
    for cfg in (
        MergeConfig(method="linear", models=[str(a), str(a)], weights=[0.3, 0.7]),
        MergeConfig(method="slerp", models=[str(a), str(a)], t=0.3),
        MergeConfig(method="ties", base=str(a), models=[str(a)], density=0.5),
        MergeConfig(method="dare", base=str(a), models=[str(a), str(a)], density=0.5),
    ):
        out = merge_folders(cfg, tmp_path / cfg.method)
        merged, original = weights(tmp_path / cfg.method), weights(a)
        assert merged.keys() == original.keys() and out["tensors"] == len(original)
        assert all(torch.allclose(merged[k], original[k], atol=1e-6) for k in original), cfg.method


def test_task_arithmetic_over_folders_and_the_cli(tok, tmp_path):
    from transformers import AutoModelForCausalLM

    base, tuned = folder(tmp_path / "base", tok, 1), folder(tmp_path / "tuned", tok, 2)
    for w, want in ((0.0, base), (1.0, tuned)):
        run = tmp_path / f"run{w}"
        proc = lmforge(
            "merge", "--method", "task_arithmetic", "--base", str(base), "--model", str(tuned),
            "--weight", str(w), "--run-dir", str(run),
        )  # fmt: skip
        assert "merge (task_arithmetic" in proc.stdout
        got, expected = weights(run / "merged"), weights(want)
        assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in expected)
        AutoModelForCausalLM.from_pretrained(run / "merged")  # a plain HF folder
        assert (run / "report.md").read_text().count("## Merge") == 1


def test_the_chat_vector_keeps_added_tokens_rows_and_reports_chat_loss(tok, tmp_path):
    from transformers import AutoTokenizer

    base = folder(tmp_path / "base", tok, 1)
    chat_tok = AutoTokenizer.from_pretrained(base)
    chat_tok.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    chat = folder(tmp_path / "chat", chat_tok, 2)
    extended = AutoTokenizer.from_pretrained(base)
    extended.add_tokens(["Bäckerei", "Morgenstunde", "Hafenmauer"])
    onto = folder(tmp_path / "onto", extended, 3)
    run = tmp_path / "run"
    cfg = MergeConfig(
        method="chat_vector",
        base=str(base),
        chat=str(chat),
        onto=str(onto),
        heldout=[SftDataset(path=str(ROOT / "examples/instructions/chat_de_heldout.jsonl"))],
    )
    r = run_merge_stage(cfg, run, seed=0)
    b, c, o, m = (weights(p) for p in (base, chat, onto, run / "merged"))
    v = len(tok)
    assert r["extended_rows"] == {"lm_head.weight": 3, "model.embed_tokens.weight": 3}
    for name in r["extended_rows"]:
        assert torch.allclose(m[name][:v], o[name][:v] + c[name] - b[name], atol=1e-6)
        assert torch.equal(m[name][v:], o[name][v:])  # the added tokens' rows, untouched
    q = "model.layers.0.self_attn.q_proj.weight"
    assert torch.allclose(m[q], o[q] + c[q] - b[q], atol=1e-6)
    merged_tok = AutoTokenizer.from_pretrained(run / "merged")
    assert len(merged_tok) == len(extended) and merged_tok.chat_template == chat_tok.chat_template
    assert set(r["heldout_loss"]["de"]) == {"onto", "base", "chat", "merged"}
    report = (run / "report.md").read_text()
    assert "Rows of tokens added by tokenizer extension" in report and "| de |" in report


def test_bad_merges_fail_in_one_line_naming_the_problem(tok, tmp_path):
    from transformers import AutoTokenizer

    a, b = folder(tmp_path / "a", tok, 1), folder(tmp_path / "b", tok, 2, hidden_size=48)
    with pytest.raises(ConfigError, match=r"model 2 .* has hidden_size = 48, model 1 has 32"):
        merge_folders(MergeConfig(models=[str(a), str(b)]), tmp_path / "out")
    with pytest.raises(ConfigError, match=r"merge.base: ties adds task vectors to a base model"):
        merge_folders(MergeConfig(method="ties", models=[str(a)]), tmp_path / "out")
    with pytest.raises(ConfigError, match=r"merge.models: slerp takes exactly 2, got 3"):
        merge_folders(MergeConfig(method="slerp", models=[str(a)] * 3), tmp_path / "out")
    with pytest.raises(ConfigError, match=r"merge.weights: 1 given for 2 model"):
        merge_folders(MergeConfig(models=[str(a), str(a)], weights=[1.0]), tmp_path / "out")
    other = AutoTokenizer.from_pretrained(a)
    other.add_tokens(["zzz"])
    c = folder(tmp_path / "c", other, 3, vocab=len(tok))
    with pytest.raises(ConfigError, match=r"model 2's tokenizer differs from model 1's; .* merge.tokenizer_from"):
        merge_folders(MergeConfig(models=[str(a), str(c)]), tmp_path / "out")
    merge_folders(MergeConfig(models=[str(a), str(c)], tokenizer_from=str(a)), tmp_path / "out")  # named: fine
    shuffled = folder(tmp_path / "shuffled", tok, 4)
    spec = json.loads((shuffled / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[300:302]  # two ordinary tokens swap ids
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (shuffled / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match=r"merge.onto: its tokenizer is not base's extended"):
        merge_folders(MergeConfig(method="chat_vector", base=str(a), chat=str(a), onto=str(shuffled)), tmp_path / "o")
    proc = lmforge("merge", "--chat-vector", "--base", str(a), "--run-dir", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: merge.chat: the chat vector needs base, chat and onto (--base --chat --onto)"
    ]
