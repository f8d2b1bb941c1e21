"""Memorization: exact on oracle models, zero for an untrained model."""

from types import SimpleNamespace

import pytest
import torch

from lmforge.data import ShardWriter
from lmforge.eval import memorization
from lmforge.models import load_model_and_tokenizer

VOCAB = 50


class Counter(torch.nn.Module):
    """Predicts last token + `step` (mod VOCAB): an oracle for data that counts up by one."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step
        self.device = torch.device("cpu")
        self.config = None  # no architecture: the KV cache the caller passes stays unused

    def forward(self, input_ids, **cache_args):
        return SimpleNamespace(logits=torch.nn.functional.one_hot((input_ids + self.step) % VOCAB, VOCAB).float())


@pytest.fixture
def counting_tokens(tmp_path):
    w = ShardWriter(tmp_path, vocab_size=VOCAB + 1, eos_id=VOCAB)
    w.add([i % VOCAB for i in range(2000)])
    w.close()
    return tmp_path


def test_oracle_memorizes_everything_and_a_wrong_model_nothing(counting_tokens):
    right = memorization(Counter(1), counting_tokens, samples=20, prefix=8, continuation=8)
    wrong = memorization(Counter(2), counting_tokens, samples=20, prefix=8, continuation=8)
    assert right["memorized"] == 1.0 and right["token_match"] == 1.0 and right["sequences"] == 20
    assert wrong["memorized"] == 0.0 and wrong["token_match"] == 0.0


def test_untrained_checkpoint_memorizes_nothing(tiny_data, tiny_run):
    from lmforge.recipe import load_recipe
    from lmforge.train import pretrain

    run_dir, recipe_path = tiny_run
    r = load_recipe(recipe_path, ["train.max_steps=1"])
    pretrain(r.model, r.train, run_dir, r.run.seed)
    model, _ = load_model_and_tokenizer(run_dir / "checkpoints" / "step-000000")
    m = memorization(model, tiny_data / "tokens" / "train", samples=8, prefix=8, continuation=8)
    assert m["memorized"] == 0.0 and 0.0 <= m["token_match"] < 0.5
