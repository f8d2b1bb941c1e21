"""Shared-context scoring equals scoring each context + choice on its own; the harness's encoding."""

import random

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from lmforge.eval.loglikelihood import Encoded, encode_item, encode_pair, score_items, score_separately


def tiny(family: str):
    torch.manual_seed(0)
    args = dict(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=48,
    )
    if family == "mistral":
        return MistralForCausalLM(MistralConfig(**args, sliding_window=None)).eval()
    return LlamaForCausalLM(LlamaConfig(**args)).eval()


def random_items(n: int, seed: int = 0) -> list[Encoded]:
    r = random.Random(seed)
    return [
        Encoded(
            [r.randrange(97) for _ in range(r.randint(1, 30))],
            [[r.randrange(97) for _ in range(r.randint(1, 9))] for _ in range(r.randint(2, 5))],
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_shared_context_equals_separate_scoring(family):
    model = tiny(family)
    items = random_items(40)
    items.append(Encoded([5] * 45, [[1, 2, 3, 4, 5, 6], [7]]))  # longer than the context: harness truncation
    items.append(Encoded([3, 4], [[8], [9], [10]]))  # single-token choices only
    shared = score_items(model, items, batch_size=6)
    for got, item in zip(shared, items):
        assert got == pytest.approx(score_separately(model, item), abs=2e-5)


def test_encoding_moves_trailing_space_and_splits_like_the_harness(tiny_data):
    tok = AutoTokenizer.from_pretrained(tiny_data / "tokenizer")
    ctx, cont = encode_pair(tok, "Frage: Wo ist der Brief? ", "im Garten")
    whole = tok.encode("Frage: Wo ist der Brief? im Garten")
    assert ctx == tok.encode("Frage: Wo ist der Brief?") and ctx + cont == whole
    assert ctx[0] == tok.eos_token_id  # add_special_tokens starts a text at a document boundary
    enc = encode_item(tok, "Am Morgen", ["backt der Bäcker.", "singt die Brücke."], " ")
    assert all(tok.decode(c).startswith(" ") for c in enc.choices)
    ctx, cont = encode_pair(tok, "", "Hallo")  # empty context: conditioned on BOS alone
    assert ctx == [tok.bos_token_id] and cont == tok.encode("Hallo", add_special_tokens=False)
