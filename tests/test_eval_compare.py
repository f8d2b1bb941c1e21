"""Paired bootstrap and the gain/forgetting reading of a comparison."""

import pytest

from lmforge.eval.compare import compare_results, paired_bootstrap


def test_identical_scores_have_zero_delta_and_p_one():
    a = [1, 0, 1, 1, 0] * 20
    r = paired_bootstrap(a, a)
    assert r["delta"] == 0 and r["p_value"] == 1.0 and r["ci95"] == [0.0, 0.0]


def test_clear_improvement_is_significant_and_noise_is_not():
    base = [0, 1] * 100
    better = [1, 1] * 100  # fixes every second item
    r = paired_bootstrap(better, base, seed=3)
    assert r["delta"] == pytest.approx(0.5) and r["p_value"] < 0.01 and r["ci95"][0] > 0
    swapped = [1, 0] * 100  # same accuracy, different items right
    n = paired_bootstrap(swapped, base, seed=3)
    assert n["delta"] == 0 and n["p_value"] == 1.0


def test_ratio_statistic_for_bits_per_byte():
    bits_a, bits_b, nbytes = [10.0, 20.0, 30.0], [12.0, 20.0, 33.0], [100, 200, 300]
    r = paired_bootstrap(bits_b, bits_a, nbytes, samples=200)
    assert r["delta"] == pytest.approx((65 - 60) / 600)
    assert r["ci95"][0] >= 0  # every resample of these documents favours `a`


def result(lang_scores: dict, task_items: dict) -> dict:
    return {
        "bits_per_byte": {
            l: {"bits_per_byte": sum(b) / sum(n), "doc_bits": b, "doc_bytes": n} for l, (b, n) in lang_scores.items()
        },
        "tasks": [
            {
                "task": f"t_{l}",
                "benchmark": "t",
                "language": l,
                "items": len(v),
                "metrics": {"acc": {"value": sum(v) / len(v), "stderr": 0.0}},
                "per_item": {"acc": v},
            }
            for l, v in task_items.items()
        ],
    }


def test_comparison_reads_target_as_gain_and_source_as_forgetting():
    base = result(
        {"de": ([50.0, 60.0], [100, 100]), "en": ([30.0, 30.0], [100, 100])},
        {"de": [0, 0, 1, 0] * 10, "en": [1, 1, 1, 0] * 10},
    )
    adapted = result(
        {"de": ([40.0, 45.0], [100, 100]), "en": ([31.0, 32.0], [100, 100])},
        {"de": [1, 0, 1, 1] * 10, "en": [1, 0, 1, 0] * 10},
    )
    rows = {(r["name"], r["language"]): r for r in compare_results(adapted, base, "de", "en", samples=300)}
    assert rows[("t", "de")]["reading"] == "gain" and rows[("t", "de")]["delta"] == pytest.approx(0.5)
    assert rows[("t", "en")]["reading"] == "forgetting" and rows[("t", "en")]["delta"] == pytest.approx(-0.25)
    bpb_de, bpb_en = rows[("bits per byte", "de")], rows[("bits per byte", "en")]
    assert bpb_de["delta"] == pytest.approx((110 - 85) / 200) and bpb_de["reading"] == "gain"
    assert bpb_en["delta"] == pytest.approx((60 - 63) / 200) and bpb_en["reading"] == "forgetting"
