"""Gain vs forgetting of language adaptation as a function of the replay ratio (issue #5).

The demo's LeoLM flow, measured: one English base pretrained from scratch with the demo recipe
(`recipes/demo.toml`), then adapted to German three times with the demo's adapt settings
(tokenizer +256 German tokens, x2 linear RoPE scaling, 600k tokens, LR re-warmed to the base's
peak and cosine-decayed) and only the English replay share changed. Prints German and English
bits per byte on held-out text before and after, writes a PNG of the trade-off curve
(English change against German change, one point per replay ratio), and checks the target: German -20% or better with English +3% or less.

    python bench/adapt_tradeoff.py                 # replay 0, 0.1, 0.25 (about 4 minutes on 2 cores)
    python bench/adapt_tradeoff.py --replay 0 0.05 0.1 0.25 0.5
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmforge.adapt import run_adapt_stage  # noqa: E402
from lmforge.models import latest_checkpoint  # noqa: E402
from lmforge.pipeline import run_stage  # noqa: E402
from lmforge.recipe import PhaseConfig, load_recipe  # noqa: E402
from lmforge.rundir.plots import line_plot  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replay", type=float, nargs="+", default=[0.0, 0.1, 0.25])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "adapt")
    a = p.parse_args()
    import os

    os.chdir(ROOT)  # the demo recipe's paths are relative to the repository
    recipe = load_recipe(ROOT / "recipes" / "demo.toml", ["adapt.passkey_trials=0", "adapt.tasks=[]"])
    base_run = a.out / "base"
    for stage in ("tokenizer", "tokenize", "pretrain"):
        run_stage(stage, recipe, base_run)
    base = latest_checkpoint(base_run / "checkpoints")
    phase = recipe.adapt.phases[0]
    rows = []
    for replay in a.replay:
        mix = {"de": 1.0 - replay, **({"en": replay} if replay else {})}
        cfg = recipe.adapt.model_copy(
            update={"base": str(base), "phases": [PhaseConfig(**{**phase.model_dump(), "mix": mix})]}
        )
        s = run_adapt_stage(cfg, recipe.train, a.out / f"replay-{replay:g}", recipe.run.seed)
        b, f = s["before"]["bits_per_byte"], s["after"]["bits_per_byte"]
        rows.append((replay, b["de"], f["de"], b["en"], f["en"]))

    print(
        f"base: {base}; adapt: {phase.tokens:,} tokens, +{recipe.adapt.new_tokens} tokens, "
        f"RoPE x{recipe.adapt.rope_scaling_factor}, peak LR {phase.lr or recipe.train.lr:g}"
    )
    print(
        "| English replay | DE bpb before | DE bpb after | DE change | EN bpb before | EN bpb after | EN change "
        "| target (DE <= -20%, EN <= +3%) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for replay, de0, de1, en0, en1 in rows:
        de, en = (de1 - de0) / de0, (en1 - en0) / en0
        ok = "met" if de <= -0.2 and en <= 0.03 else "missed"
        print(f"| {replay:.0%} | {de0:.4f} | {de1:.4f} | {de:+.1%} | {en0:.4f} | {en1:.4f} | {en:+.2%} | {ok} |")
    label = "replay " + " -> ".join(f"{r[0]:g}" for r in rows)
    plot = line_plot(
        ROOT / "bench" / "adapt_tradeoff.png",
        {label: ([100 * (r[4] - r[3]) / r[3] for r in rows], [100 * (r[2] - r[1]) / r[1] for r in rows])},
        "English bits/byte change, % (forgetting)",
        "German bits/byte change, % (gain)",
        "Gain vs forgetting, English demo base adapted to German",
        logx=True,
    )
    print(f"plot: {plot.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
