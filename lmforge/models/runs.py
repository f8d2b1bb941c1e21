"""A run directory and the models in it: what a run is, which of its models a verb or a stage
takes, and the one reader of `checkpoints/latest`.

Stages write their models to fixed places. A verb given a run takes the run's newest model; a
stage that starts from the run's model takes the newest one made by a stage *before* it, so a
rerun never starts from its own earlier output (sft from the adapted model, not from `chat/`).
"""

from pathlib import Path

STAGE_ORDER = ("pretrain", "adapt", "sft", "dpo", "merge", "release")

# Newest first: (the stage that writes it, where in the run directory).
MODEL_PLACES: tuple[tuple[str, str], ...] = (
    ("release", "release"),
    ("merge", "merged"),
    ("dpo", "dpo/model"),
    ("sft", "chat"),
    ("sft", "sft/adapter"),
    ("adapt", "adapted"),
    ("pretrain", "checkpoints"),  # the checkpoint `checkpoints/latest` names
)


def is_model_dir(path: Path) -> bool:
    """An HF model folder, or a peft adapter folder (which names its base)."""
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def is_run_dir(path: str | Path) -> bool:
    """A folder stages have run in: every stage writes its manifest, and pretraining its checkpoints."""
    path = Path(path)
    return (path / "manifest.json").is_file() or (path / "checkpoints" / "latest").is_file()


def latest_checkpoint(root: str | Path) -> Path | None:
    """The checkpoint that `root/latest` names, once complete (its trainer_state.json is written last)."""
    pointer = Path(root) / "latest"
    if not pointer.is_file():
        return None
    path = Path(root) / pointer.read_text().strip()
    return path if (path / "trainer_state.json").is_file() else None


def run_model(run_dir: str | Path, before: str | None = None) -> Path | None:
    """The run's newest model, or with `before` the newest one made by a stage earlier than that
    stage (what it starts from); None when the run has none."""
    run_dir = Path(run_dir)
    limit = STAGE_ORDER.index(before) if before else len(STAGE_ORDER)
    for stage, place in MODEL_PLACES:
        if STAGE_ORDER.index(stage) >= limit:
            continue
        folder = latest_checkpoint(run_dir / place) if place == "checkpoints" else run_dir / place
        if folder is not None and is_model_dir(folder):
            return folder
    return None
