"""Experiment trackers (TensorBoard, Weights & Biases, MLflow), off by default, for every training stage.

metrics.jsonl is always written; trackers only mirror its rows (`MetricsWriter(..., mirror=trackers)`),
so a run never depends on them and every stage reports the same numbers to each. The `[train]`
tracker keys apply to all stages; values are named `<stage>/<metric>` (`sft/loss`, `dpo/reward_margin`).
Offline use is the default where a tracker has one: W&B honours `train.wandb_mode` (or WANDB_MODE),
and MLflow writes a file store in `<run>/mlruns` unless `train.mlflow_tracking_uri` names a server.
"""

import os
import time
from pathlib import Path

from lmforge.errors import ConfigError
from lmforge.rundir import MetricsWriter


class Trackers:
    def __init__(self, run_dir: Path, cfg, stage: str, config: dict):
        """`cfg`: a TrainConfig (its tensorboard, wandb*, mlflow* keys); `config` is recorded as the run's parameters."""
        self.stage = stage
        self._tb = self._wandb = self._mlflow = None
        name = f"{run_dir.name}-{stage}"
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("train.tensorboard = true needs `pip install tensorboard`") from None
            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard" / stage))
        if cfg.wandb:
            try:
                import wandb as wb
            except ImportError:
                raise ConfigError("train.wandb = true needs `pip install wandb`") from None
            self._wandb = wb.init(
                project=cfg.wandb_project, name=name, dir=str(run_dir), config=config, mode=cfg.wandb_mode
            )
        if cfg.mlflow:
            try:
                from mlflow.tracking import MlflowClient
            except ImportError:
                raise ConfigError("train.mlflow = true needs `pip install mlflow-skinny`") from None
            uri = cfg.mlflow_tracking_uri
            if uri is None:  # the offline default; MLflow 3 asks for this opt-in to its file store
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
                uri = (run_dir / "mlruns").resolve().as_uri()
            client = MlflowClient(uri)
            found = client.get_experiment_by_name(cfg.mlflow_experiment)
            experiment = found.experiment_id if found else client.create_experiment(cfg.mlflow_experiment)
            run = client.create_run(experiment, run_name=name)
            for key, value in _flat(config).items():
                client.log_param(run.info.run_id, key, str(value)[:500])  # MLflow's limit per value
            self._mlflow = (client, run.info.run_id)

    def log(self, step: int, values: dict) -> None:
        values = {f"{self.stage}/{k}": float(v) for k, v in values.items()}
        if self._tb:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb:
            self._wandb.log(values, step=step)
        if self._mlflow:
            from mlflow.entities import Metric

            client, run_id = self._mlflow
            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k.replace("/", "."), v, now, step) for k, v in values.items()])

    def close(self) -> None:
        if self._tb:
            self._tb.close()
        if self._wandb:
            self._wandb.finish()
        if self._mlflow:
            client, run_id = self._mlflow
            client.set_terminated(run_id)


def stage_metrics(run_dir: Path, cfg, stage: str, config: dict, is_main: bool = True):
    """The stage's metrics.jsonl writer, mirrored to the trackers `cfg` asks for; None on ranks other
    than 0 (rank 0 alone logs)."""
    if not is_main:
        return None
    trackers = Trackers(Path(run_dir), cfg, stage, config) if cfg.tensorboard or cfg.wandb or cfg.mlflow else None
    return MetricsWriter(run_dir, stage, trackers)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out
