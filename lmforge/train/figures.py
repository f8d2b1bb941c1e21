"""What every training stage's report says about how it trained: real tokens per second (padding
excluded), the share of computed positions that was padding, peak memory, and the settings that
change them (how rows are laid out, attention kernel, activation checkpointing, FSDP)."""

from lmforge.recipe import TrainConfig
from lmforge.train.loop import Done


def efficiency(done: Done, train: TrainConfig, attention: str, rows: str) -> dict:
    """`rows`: how the stage lays out its batches, in words ("conversations packed with document
    masks", "padded conversations", ...)."""
    return {
        "tok_per_s": done.tokens / max(done.seconds, 1e-9),
        "padding_share": done.padding_share,
        "peak_memory_gib": done.peak_memory / 2**30,
        "settings": {
            "rows": rows,
            "attention": attention,
            "activation_checkpointing": train.activation_checkpointing,
            "fsdp": train.fsdp,
        },
    }


def efficiency_line(s: dict) -> str:
    """One report sentence from `efficiency`'s figures."""
    on = [k.replace("_", " ") for k in ("activation_checkpointing", "fsdp") if s["settings"][k]]
    return (
        f"{s['settings']['rows'].capitalize()}: {s['tok_per_s']:,.0f} real tokens/s, {s['padding_share']:.1%} of computed positions padding, "
        f"peak memory {s['peak_memory_gib']:.2f} GiB (rank 0), attention `{s['settings']['attention']}`"
        + (f", {', '.join(on)}" if on else "")
        + "."
    )
