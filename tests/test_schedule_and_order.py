import pytest

from lmforge.recipe import TrainConfig
from lmforge.train.data_order import DataOrder
from lmforge.train.schedule import lr_at


def test_cosine_warmup_then_decay_to_floor():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1, schedule="cosine")
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1)
    values = [lr_at(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_wsd_is_flat_then_linear():
    cfg = TrainConfig(lr=1.0, warmup_steps=0, max_steps=100, min_lr_ratio=0.0, schedule="wsd", wsd_decay_fraction=0.2)
    assert lr_at(50, cfg) == 1.0 and lr_at(79, cfg) == 1.0
    assert lr_at(90, cfg) == pytest.approx(0.5) and lr_at(100, cfg) == pytest.approx(0.0)


def test_two_ranks_read_what_one_rank_with_accumulation_reads():
    order = DataOrder(num_windows=37, seed=3)
    micro = 4
    for samples_done in (0, 8, 32, 64):
        one = [order.indices(DataOrder.micro_slice(samples_done, m, 0, 1, micro), micro) for m in range(2)]
        two = [order.indices(DataOrder.micro_slice(samples_done, 0, r, 2, micro), micro) for r in range(2)]
        assert one == two


def test_order_is_seeded_and_covers_each_epoch():
    a, b, c = DataOrder(50, 1), DataOrder(50, 1), DataOrder(50, 2)
    assert a.indices(0, 120) == b.indices(0, 120) != c.indices(0, 120)
    assert sorted(a.indices(50, 50)) == list(range(50))
    assert a.indices(0, 50) != a.indices(50, 50)  # a fresh permutation per epoch
