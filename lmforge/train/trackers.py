"""Optional experiment trackers (TensorBoard, Weights & Biases), off by default.

metrics.jsonl is always written; trackers only mirror it, so a run never depends on them.
"""

from pathlib import Path

from lmforge.errors import ConfigError


class Trackers:
    def __init__(self, run_dir: Path, tensorboard: bool, wandb: bool, project: str, config: dict):
        self._tb = self._wandb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("train.tensorboard = true needs `pip install tensorboard`") from None
            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        if wandb:
            try:
                import wandb as wb
            except ImportError:
                raise ConfigError("train.wandb = true needs `pip install wandb`") from None
            self._wandb = wb.init(project=project, name=run_dir.name, dir=str(run_dir), config=config)

    def log(self, step: int, values: dict) -> None:
        if self._tb:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)
        if self._wandb:
            self._wandb.log(values, step=step)

    def close(self) -> None:
        if self._tb:
            self._tb.close()
        if self._wandb:
            self._wandb.finish()
