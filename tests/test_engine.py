"""The decode engine: batched decoding with requests joining mid-batch gives each request the tokens
it gets alone, per-request sampling and seeds, stop strings, cancellation, errors."""

import time

import pytest
import torch

from lmforge.engine import Engine, SamplingParams
from lmforge.engine.events import Aborted, Done, Failed, Logprobs, Text, Usage
from lmforge.engine.text_stream import TextStream
from lmforge.errors import ConfigError, LmforgeError
from tests.conftest import pretrain_tiny

PROMPTS = [
    "Am Morgen backt der Bäcker",
    "The harbour is",
    "In the old house the captain",
    "Der Hafen",
    "When the train",
    "Die alte Frau kocht eine Suppe und",
]


@pytest.fixture
def tiny(tiny_run):
    from lmforge.models import load_model_and_tokenizer

    return load_model_and_tokenizer(pretrain_tiny(tiny_run, "train.seq_len=128"))  # room for prompt + reply


def alone(model, tok, prompt_ids, n):
    """Greedy tokens of plain transformers `generate`, and the logits at each step."""
    ids = torch.tensor([prompt_ids])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
        eos_token_id=None,
        pad_token_id=0,
    )
    return out.sequences[0, len(prompt_ids) :].tolist(), [l[0] for l in out.logits]


def collect(engine, prompt_ids, params):
    got = {"events": []}
    return got, engine.submit(prompt_ids, params, got["events"].append)


def decode_joining(engine, prompts, lengths, pause_after: tuple[int, ...] = (), steps: int = 0) -> list:
    """Submit greedy requests one by one (each token's log-prob asked for), running `steps` decode
    steps after each index in `pause_after` so that later ones join a running batch, then decode to
    the end; (events, request) per prompt."""
    runs = []
    for i, (ids, n) in enumerate(zip(prompts, lengths)):
        runs.append(collect(engine, ids, SamplingParams(max_tokens=n, temperature=0, logprobs=0)))
        if i in pause_after:
            for _ in range(steps):
                engine.run_once()
    while engine.running or engine.waiting:
        engine.run_once()
    return runs


def assert_same_or_near_tie(got: list[int], want: list[int], logits: list[torch.Tensor], events: list = ()):
    """The same greedy tokens up to a near-tie; with the run's events, also each token's log-prob
    (so a wrong position or mask shows even where a weak model's argmax would not move)."""
    given = [e.logprob for ev in events if isinstance(ev, Logprobs) and not ev.prompt for e in ev.entries]
    for step, lp in enumerate(given[: len(want)]):
        if got[step] != want[step]:
            break
        assert abs(lp - float(torch.log_softmax(logits[step].float(), -1)[got[step]])) < 1e-3, step
    for step, (a, b) in enumerate(zip(got, want)):
        if a != b:  # padding changed the summation order: only a near-tie may flip
            top2 = logits[step].float().topk(2).values
            assert float(top2[0] - top2[1]) < 1e-4, (step, a, b)
            return
    assert len(got) == len(want)


def gguf_blocks(model):
    """A copy of the model with its linear weights as a GGUF file gives them: Q4_1 blocks, dequantised."""
    import copy

    from tests.test_block_weights import gguf_roundtrip

    model = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed" not in name:
                p.copy_(gguf_roundtrip(p, "Q4_1"))
    return model


@pytest.mark.parametrize("step", ["llama_step", "transformers_forward", "block_kernel", "chunked_prefill"])
def test_batched_greedy_with_requests_joining_mid_batch_equals_decoding_alone(tiny, step, monkeypatch):
    from lmforge.engine import batch, block_weights

    model, tok = tiny
    if step == "chunked_prefill":  # every prompt prefilled alone, three tokens a call
        monkeypatch.setattr(batch, "TOGETHER", 0)
        monkeypatch.setattr(batch, "CHUNK", 3)
    if step == "block_kernel":
        if block_weights.kernel() is None:
            pytest.skip("the block kernel needs x86-64 with AVX2+FMA and a C compiler")
        model = gguf_blocks(model)
    engine = Engine(model, tok, max_batch=4, start=False)
    assert engine.lean  # a Llama model takes the lean decode step unless told otherwise
    assert getattr(engine.project, "blocks", 0) == (7 * len(model.model.layers) if step == "block_kernel" else 0)
    engine.lean = step != "transformers_forward"
    engine.stops = set()  # run every request to max_tokens
    prompts = [tok.encode(p, add_special_tokens=False) for p in PROMPTS]
    lengths = [12, 20, 9, 16, 14, 18]
    # two requests start; more join after a few steps, one waits for a free slot
    runs = decode_joining(engine, prompts, lengths, pause_after=(1, 3), steps=3)
    for (got, req), ids, n in zip(runs, prompts, lengths):
        want, logits = alone(model, tok, ids, n)
        assert got["events"][-1] == Done("length", Usage(len(ids), n))
        assert_same_or_near_tie(req.tokens, want, logits, got["events"])


def test_seeds_repeat_and_rows_keep_their_own_parameters(tiny):
    model, tok = tiny
    engine = Engine(model, tok, max_batch=8)
    ids = tok.encode("Am Morgen", add_special_tokens=False)
    run = lambda **kw: "".join(engine.stream(ids, SamplingParams(max_tokens=24, **kw)))  # noqa: E731
    assert run(temperature=1.0, seed=3) == run(temperature=1.0, seed=3)
    assert len({run(temperature=1.5, seed=s) for s in range(6)}) > 1
    assert run(temperature=0) == run(temperature=0, seed=99)  # greedy ignores the seed


def test_text_stream_never_splits_characters_or_leaks_stop_strings(tiny):
    _, tok = tiny
    text = "Grüße aus Köln! STOP danach nichts"
    ids = tok.encode(text, add_special_tokens=False)
    stream, out = TextStream(tok, ["STOP"]), []
    for i in ids:
        piece, stopped = stream.push(i)
        out.append(piece)
        assert "\ufffd" not in piece and "ST" not in piece
        if stopped:
            break
    assert "".join(out) == "Grüße aus Köln! " and stopped


def test_cancel_frees_the_slot_and_errors_reach_every_request(tiny):
    model, tok = tiny
    engine = Engine(model, tok, max_batch=2, start=False)
    engine.stops = set()
    ids = tok.encode("The harbour", add_special_tokens=False)
    (a, ra), (b, rb) = (
        collect(engine, ids, SamplingParams(max_tokens=50, temperature=0)),
        collect(engine, ids, SamplingParams(max_tokens=50, temperature=0)),
    )
    engine.run_once()
    ra.cancel()
    engine.run_once()
    assert isinstance(a["events"][-1], Done) and a["events"][-1].reason == "cancelled" and engine.running == [rb]
    embed = model.model.embed_tokens  # every path through the model starts here
    embed.forward, real = (lambda *x, **k: (_ for _ in ()).throw(RuntimeError("device lost"))), embed.forward
    engine.run_once()
    assert b["events"][-1] == Failed("RuntimeError: device lost") and not engine.running
    embed.forward = real
    c, _ = collect(engine, ids, SamplingParams(max_tokens=3, temperature=0))
    while engine.running or engine.waiting:
        engine.run_once()
    assert c["events"][-1].reason == "length"  # the engine goes on


def test_a_cancelled_queued_request_leaves_the_queue_at_once(tiny):
    """Clients that give up while queued must not keep places that live clients are refused for."""
    from lmforge.engine import QueueFull

    model, tok = tiny
    engine = Engine(model, tok, max_batch=1, max_waiting=2, start=False)
    ids = tok.encode("The harbour", add_special_tokens=False)
    collect(engine, ids, SamplingParams(max_tokens=20, temperature=0))
    engine.run_once()  # the first request takes the one slot
    (a, ra), (b, rb) = (collect(engine, ids, SamplingParams(max_tokens=5)) for _ in range(2))
    with pytest.raises(QueueFull):
        engine.submit(ids, SamplingParams(max_tokens=5), lambda ev: None)
    ra.cancel()
    rb.cancel()
    assert not engine.waiting and a["events"] == [Done("cancelled", Usage(len(ids), 0))] and len(b["events"]) == 1
    for _ in range(2):
        engine.submit(ids, SamplingParams(max_tokens=5), lambda ev: None)  # room again


def test_abort_all_ends_running_and_waiting_requests_and_refuses_new_ones(tiny):
    """A server shutting down: every request hears Aborted exactly once, nothing after it, and the
    engine thread stops."""
    from lmforge.engine.batch import ShuttingDown

    model, tok = tiny
    engine = Engine(model, tok, max_batch=1)
    engine.stops = set()
    ids = tok.encode("The harbour", add_special_tokens=False)
    runs = [collect(engine, ids, SamplingParams(max_tokens=120 - len(ids), temperature=0)) for _ in range(3)]
    end = time.time() + 30
    while not any(isinstance(ev, Text) for ev in runs[0][0]["events"]) and time.time() < end:
        time.sleep(0.005)  # the first request is decoding, the others wait for the one slot
    engine.close()
    assert not engine.thread.is_alive() and not engine.running and not engine.waiting
    for got, _ in runs:
        ends = [ev for ev in got["events"] if not isinstance(ev, Text)]
        assert ends == [Aborted("the server is shutting down")] and got["events"][-1] == ends[0]
    with pytest.raises(ShuttingDown):
        engine.submit(ids, SamplingParams(max_tokens=2), lambda ev: None)


def test_any_allowed_top_p_and_temperature_sample_a_token(tiny):
    """top_p far below float32's resolution still keeps the top token; a temperature that would
    overflow the logits decodes greedily instead of sampling NaNs."""
    from lmforge.engine.sampling import make_generator, sample

    logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
    for top_p in (1e-300, 1e-45, 1e-7):
        assert sample(logits, SamplingParams(temperature=1.0, top_p=top_p), make_generator(0)) == 0
    assert sample(logits, SamplingParams(temperature=1e-300), make_generator(0)) == 0


def test_bad_parameters_and_prompts_fail_clearly(tiny):
    model, tok = tiny
    engine = Engine(model, tok, start=False)
    with pytest.raises(ConfigError, match="max_tokens must be at least 1"):
        SamplingParams(max_tokens=0)
    with pytest.raises(ConfigError, match=r"top_p must be in \(0, 1\]"):
        SamplingParams(top_p=0)
    with pytest.raises(LmforgeError, match="exceeds the model's context"):
        engine.submit([1] * 10, SamplingParams(max_tokens=10_000), print)


def test_kv_buffer_joins_grows_and_trims_like_concatenation():
    """The preallocated cache holds exactly what concatenating the rows' caches would."""
    from lmforge.engine.kv_buffer import BLOCK, KVBuffer

    g = torch.Generator().manual_seed(0)
    rand = lambda t: [(torch.randn(1, 2, t, 4, generator=g), torch.randn(1, 2, t, 4, generator=g))]  # noqa: E731
    first, longer = rand(5), rand(9)
    buf = KVBuffer(first, limit=1000)
    buf.join(longer)  # the batch shifts right to fit the longer row
    ((k, v),) = buf.layers()
    assert k.shape == (2, 2, 9, 4) and torch.equal(k[0, :, 4:], first[0][0][0]) and not k[0, :, :4].any()
    assert torch.equal(v[1], longer[0][1][0])
    for step in range(BLOCK + 3):  # past the first block: the buffer grows and keeps its contents
        col = buf.next_column()
        buf.write(0, col, torch.full((2, 2, 1, 4), float(step)), torch.zeros(2, 2, 1, 4))
    assert buf.length == 9 + BLOCK + 3 and buf.capacity >= buf.length
    assert torch.equal(buf.layers()[0][0][:, :, 4:9], k[:, :, 4:])
    buf.select(torch.tensor([1]), drop=4)  # row 0 leaves; the columns that were padding go
    ((k2, _),) = buf.layers()
    assert k2.shape == (1, 2, 5 + BLOCK + 3, 4) and torch.equal(k2[0, :, :5], longer[0][0][0, :, 4:])
    assert float(k2[0, 0, -1, 0]) == BLOCK + 2


def test_lean_step_logits_match_the_model_forward_with_either_linear_kernel(tiny, monkeypatch):
    """The lean step's fp32 linears go to oneDNN where torch has it (faster gemv on some CPUs) and to
    F.linear otherwise: both give transformers' own logits for the next token."""
    import torch.nn.functional as F

    from lmforge.engine import llama_step
    from lmforge.engine.kv_buffer import KVBuffer

    model, tok = tiny
    assert llama_step.pick_linear(torch.float32) is llama_step._onednn_linear  # the CPU wheel has oneDNN
    assert llama_step.pick_linear(torch.bfloat16) is F.linear
    ids = torch.tensor([tok.encode("Am Morgen backt der Bäcker", add_special_tokens=False)])
    with torch.inference_mode():
        prefill = model(input_ids=ids[:, :-1], use_cache=True)
        want = model(input_ids=ids, use_cache=False).logits[0, -1]
        cache = [(layer.keys, layer.values) for layer in prefill.past_key_values.layers]
        position, mask = torch.tensor([[ids.shape[1] - 1]]), torch.ones(1, ids.shape[1], dtype=torch.long)
        for kernel in (llama_step._onednn_linear, F.linear):
            monkeypatch.setattr(llama_step, "pick_linear", lambda dtype, k=kernel: k)
            got = llama_step.decode_step(model, ids[:, -1:], position, KVBuffer(cache, 128), mask)[0]
            assert torch.allclose(got, want, atol=1e-4, rtol=0), (kernel, float((got - want).abs().max()))


def test_lean_step_prefills_several_tokens_a_row_as_the_model_forward_does(tiny):
    """The step over n new tokens a row (a prefill): rows left-padded to one n, one row on top of
    kept K/V of its beginning, the other with none; each row's next-token logits are those of a
    plain forward over its whole prompt, and the K/V it leaves let the next token decode the same."""
    from lmforge.engine import llama_step
    from lmforge.engine.kv_buffer import KVBuffer
    from tests.tiny_models import tiny_family

    _, tok = tiny  # weights large enough for attention to depend on positions (the trained tiny's barely do)
    model = tiny_family("llama3", len(tok), tok.bos_token_id, tok.eos_token_id, initializer_range=0.3)
    long = tok.encode("Am Morgen backt der Bäcker frisches Brot", add_special_tokens=False)
    short = tok.encode("Die Katze", add_special_tokens=False)
    kept, new = 3, len(long) - 3
    assert len(short) < new
    with torch.inference_mode():
        past = model(input_ids=torch.tensor([long[:kept]]), use_cache=True).past_key_values
        cache = [
            (torch.cat([k, torch.zeros_like(k)]), torch.cat([v, torch.zeros_like(v)]))
            for k, v in ((layer.keys, layer.values) for layer in past.layers)
        ]  # row 0 keeps its first 3 tokens; row 1 has none (padding)
        ids = torch.zeros(2, new, dtype=torch.long)
        positions = torch.ones(2, new, dtype=torch.long)
        mask = torch.zeros(2, kept + new, dtype=torch.long)
        ids[0], positions[0], mask[0] = torch.tensor(long[kept:]), torch.arange(kept, len(long)), 1
        ids[1, -len(short) :], positions[1, -len(short) :] = torch.tensor(short), torch.arange(len(short))
        mask[1, -len(short) :] = 1
        buf = KVBuffer(cache, 128)
        got = llama_step.decode_step(model, ids, positions, buf, mask)
        for row, prompt in enumerate((long, short)):
            want = model(input_ids=torch.tensor([prompt])).logits[0, -1]
            assert torch.allclose(got[row], want, atol=1e-4, rtol=0), (row, float((got[row] - want).abs().max()))
        following = got.argmax(-1)  # one more token each, on the K/V the prefill left
        mask = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1)
        step = llama_step.decode_step(model, following[:, None], torch.tensor([[len(long)], [len(short)]]), buf, mask)
        for row, prompt in enumerate((long, short)):
            want = model(input_ids=torch.tensor([prompt + [int(following[row])]])).logits[0, -1]
            assert torch.allclose(step[row], want, atol=1e-4, rtol=0), row


def test_prefix_cache_finds_the_longest_shared_beginning_and_keeps_recent_prompts_within_budget():
    from lmforge.engine.prefix_cache import MIN_SHARED, PrefixCache

    def kv(prompt):  # one layer; K holds each position's token id, so a slice shows where it came from
        x = torch.tensor(prompt, dtype=torch.float32).view(1, 1, -1, 1)
        return [(x, -x)]

    size = lambda p: 2 * 4 * len(p)  # noqa: E731 - K and V, fp32
    a, b, c = list(range(40)), list(range(30)) + [99] * 10, list(range(100, 140))
    cache = PrefixCache(budget_bytes=size(a) + size(b))
    assert cache.longest(a) == (0, None)
    cache.add(a, kv(a))
    cache.add(b, kv(b))
    n, got = cache.longest(list(range(35)) + [7] * 5)  # 35 shared with a, 30 with b
    assert n == 35 and got[0][0].flatten().tolist() == list(range(35)) and torch.equal(got[0][1], -got[0][0])
    assert cache.longest(a)[0] == 39  # the same prompt: all but its last token
    assert cache.longest(list(range(MIN_SHARED - 1)) + [500] * 30) == (0, None)  # too short a match
    cache.add(c, kv(c))  # over budget: the least recently used (b; a was just used) goes
    assert list(cache.entries) == [tuple(a), tuple(c)] and cache.bytes == size(a) + size(c)
    assert (cache.hits, cache.reused_tokens) == (2, 35 + 39)


def test_block_forms_are_found_once_per_model_until_a_weight_changes(tiny):
    from lmforge.engine import llama_step

    model = gguf_blocks(tiny[0])
    first = llama_step.projection_for(model)
    assert llama_step.projection_for(model) is first  # a second engine on the same model
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight.mul_(2)  # as an optimizer step writes in place
    second = llama_step.projection_for(model)
    assert second is not first
    up = model.model.layers[0].mlp.up_proj
    replaced = torch.nn.Parameter(up.weight.detach().clone())
    with torch.no_grad():
        while replaced._version < up.weight._version:  # a new tensor at the old one's version:
            replaced.add_(0)  # only its identity tells them apart
    assert replaced._version == up.weight._version
    up.weight = replaced
    assert llama_step.projection_for(model) is not second
