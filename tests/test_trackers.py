"""Trackers mirror metrics.jsonl in every training stage: TensorBoard's event files and MLflow's file
store, read back with their own readers, hold the same numbers at the same steps. (`make test`
installs tensorboard and mlflow-skinny; without them these tests fail rather than skip.)"""

import pytest

from lmforge.recipe import DpoConfig, PreferenceDataset, SftConfig, SftDataset, TrainConfig
from lmforge.rundir import read_metrics
from tests.conftest import ROOT, pretrain_tiny

TRACKING = TrainConfig(tensorboard=True, mlflow=True)


def tensorboard_scalars(folder) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def mlflow_metric(run_dir, stage: str, key: str) -> dict[int, float]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient((run_dir / "mlruns").resolve().as_uri())  # lmforge opted in to the file store
    (run,) = client.search_runs(
        [client.get_experiment_by_name("lmforge").experiment_id], f"tags.mlflow.runName = '{run_dir.name}-{stage}'"
    )
    assert run.info.status == "FINISHED"
    return {m.step: m.value for m in client.get_metric_history(run.info.run_id, f"{stage}.{key}")}


def assert_mirrored(run_dir, stage: str, key: str) -> None:
    logged = {r["step"]: r[key] for r in read_metrics(run_dir, stage) if key in r}
    assert len(logged) >= 2
    board = tensorboard_scalars(run_dir / "tensorboard" / stage)[f"{stage}/{key}"]
    assert board.keys() == logged.keys() and all(board[s] == pytest.approx(v, rel=1e-6) for s, v in logged.items())
    flow = mlflow_metric(run_dir, stage, key)
    assert flow.keys() == logged.keys() and all(flow[s] == pytest.approx(v, rel=1e-9) for s, v in logged.items())


def test_pretrain_mirrors_its_metrics(tiny_run):
    run_dir = pretrain_tiny(tiny_run, "train.tensorboard=true", "train.mlflow=true", "train.log_every=2")
    assert_mirrored(run_dir, "pretrain", "loss")
    assert_mirrored(run_dir, "pretrain", "lr")


def test_sft_mirrors_its_metrics(tiny_run):
    from lmforge.sft import run_sft_stage

    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=128")
    cfg = SftConfig(
        method="lora",
        epochs=1,
        batch_size=8,
        lr=5e-3,
        log_every=2,
        datasets=[SftDataset(path=str(ROOT / "examples" / "instructions" / "chat_de_heldout.jsonl"))],
    )
    run_sft_stage(cfg, run_dir, 0, tracking=TRACKING)
    assert_mirrored(run_dir, "sft", "loss")


def test_dpo_mirrors_its_metrics(tiny_run):
    from lmforge.dpo import run_dpo_stage

    run_dir = pretrain_tiny(tiny_run, "model.max_position_embeddings=256")
    pairs = ROOT / "examples" / "preferences" / "pairs.jsonl"
    cfg = DpoConfig(datasets=[PreferenceDataset(path=str(pairs), weight=0.2)], lr=3e-3, batch_size=8, log_every=2)
    run_dpo_stage(cfg, run_dir, 0, tracking=TRACKING)
    assert_mirrored(run_dir, "dpo", "loss")
    assert_mirrored(run_dir, "dpo", "reward_margin")
