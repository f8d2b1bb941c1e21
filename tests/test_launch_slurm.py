"""`lmforge launch slurm`: the sbatch script it writes, run by stand-ins for sbatch, srun and
scontrol that start each "node" as a local process (2 nodes x 1 process, gloo on the CPU).

The stand-ins behave as Slurm does where the script depends on it: sbatch sets SLURM_JOB_ID,
SLURM_NNODES and SLURM_JOB_NODELIST and runs the script; srun starts its command once per node;
`scontrol show hostnames` names the first node. Multi-node training is then torchrun's c10d
rendezvous for real, and the loss matches one process with gradient accumulation 2.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port, lmforge
from tests.test_pretrain import losses

SBATCH = """#!/bin/bash
# stand-in: run the batch script now, as job 4242 on $NODES nodes called localhost
script="${@: -1}"
nodes=$(sed -n 's/^#SBATCH --nodes=//p' "$script")
SLURM_JOB_ID=4242 SLURM_NNODES=$nodes SLURM_JOB_NODELIST=localhost bash "$script" > "$script.out" 2>&1
code=$?
echo 4242
exit $code
"""
SRUN = """#!/bin/bash
# stand-in: drop srun's own options, start the command once per node, wait for every one;
# signals go on to the tasks, as srun forwards them
while [[ "$1" == --* ]]; do shift; done
pids=()
for ((node = 0; node < SLURM_NNODES; node++)); do
  SLURM_PROCID=$node SLURM_NODEID=$node "$@" &
  pids+=($!)
done
trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM
code=0
for pid in "${pids[@]}"; do
  while true; do wait "$pid"; c=$?; kill -0 "$pid" 2>/dev/null || break; done
  [ $c -ne 0 ] && code=$c
done
exit $code
"""
SCONTROL = """#!/bin/bash
# stand-in: the job's nodes are this machine; requeue requests are written down
case "$1 $2" in
  "show hostnames") echo 127.0.0.1 ;;
  requeue*) echo "$@" >> "$(dirname "$0")/requeued" ;;
esac
"""


@pytest.fixture
def slurm_bin(tmp_path) -> Path:
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", SBATCH), ("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def test_the_script_names_the_nodes_rendezvous_and_requeue(tiny_run, tmp_path):
    _, recipe_path = tiny_run
    out = lmforge(
        "launch", "slurm", str(recipe_path), "--stage", "pretrain", "--nodes", "4", "--gpus-per-node", "8",
        "--partition", "gpu", "--time", "2-00:00:00", "--run-dir", str(tmp_path / "run"),
    ).stdout  # fmt: skip
    script = (tmp_path / "run" / "launch" / "slurm-pretrain.sbatch").resolve()
    assert f"sbatch script: {script}" in out
    text = script.read_text()
    for line in (
        "#SBATCH --nodes=4",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=2-00:00:00",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@180",
    ):
        assert line in text.splitlines(), line
    assert "--nproc-per-node=8" in text and "--rdzv-backend=c10d" in text and "--rdzv-endpoint=$head:29500" in text
    assert f"-m lmforge pretrain {(tmp_path / 'run' / 'launch' / 'pretrain.yaml').resolve()}" in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0  # it parses


@pytest.mark.slow
def test_two_stand_in_nodes_train_as_one_job(tiny_run, tmp_path, slurm_bin):
    """--submit through the stand-in sbatch: 2 nodes x 1 process give the loss of 1 process x 2 micro-batches."""
    _, recipe_path = tiny_run
    common = ["--set", "train.max_steps=6", "--set", "train.log_spaced_checkpoints=false"]
    lmforge("pretrain", str(recipe_path), *common, "--set", "train.grad_accum=2", "--run-dir", str(tmp_path / "one"))
    env = {"PATH": f"{slurm_bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = lmforge(
        "launch", "slurm", str(recipe_path), *common, "--nodes", "2", "--gpus-per-node", "0",
        "--port", str(free_port()), "--submit", "--run-dir", str(tmp_path / "two"), env=env, check=False,
    )  # fmt: skip
    script = tmp_path / "two" / "launch" / "slurm-pretrain.sbatch"
    log = Path(f"{script.resolve()}.out")
    assert out.returncode == 0, out.stderr + (log.read_text() if log.exists() else "")
    assert "submitted: job 4242" in out.stdout
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(one) == sorted(two) == list(range(1, 7))
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-4, abs=1e-5)
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["config"]["pretrain"]["world_size"] == 2
    assert "the stage exited with code 0" in log.read_text()


def test_a_stage_that_runs_in_one_process_is_refused(tiny_run, tmp_path):
    _, recipe_path = tiny_run
    proc = lmforge("launch", "slurm", str(recipe_path), "--stage", "generate", "--run-dir", str(tmp_path), check=False)
    assert proc.returncode == 2 and "launch slurm --stage generate: runs in one process" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "launch").exists()


@pytest.mark.parametrize("stage", ["adapt", "sft", "dpo"])
def test_every_training_stage_gets_a_script(tiny_run, tmp_path, stage):
    _, recipe_path = tiny_run
    lmforge("launch", "slurm", str(recipe_path), "--stage", stage, "--nodes", "4", "--run-dir", str(tmp_path))
    text = (tmp_path / "launch" / f"slurm-{stage}.sbatch").read_text()
    assert "#SBATCH --nodes=4" in text.splitlines()
    assert f"-m lmforge {stage} {(tmp_path / 'launch' / f'{stage}.yaml').resolve()}" in text


def test_sbatch_missing_is_one_line(tiny_run, tmp_path):
    _, recipe_path = tiny_run
    env = {"PATH": str(Path(sys.executable).parent) + os.pathsep + "/usr/bin" + os.pathsep + "/bin"}
    proc = lmforge("launch", "slurm", str(recipe_path), "--submit", "--run-dir", str(tmp_path), env=env, check=False)
    assert proc.returncode == 2 and "sbatch not found" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_near_the_time_limit_the_job_checkpoints_requeues_and_resumes(tiny_run, tmp_path, slurm_bin):
    """USR1 (Slurm's warning before the time limit) to the batch shell: the stage checkpoints at its
    step's end, the job asks to be requeued, and the requeued job ends where an uninterrupted run does."""
    import signal
    import time

    _, recipe_path = tiny_run
    common = [
        "--set",
        "train.max_steps=40",
        "--set",
        "train.log_spaced_checkpoints=false",
        "--set",
        "train.log_every=1",
    ]
    lmforge("pretrain", str(recipe_path), *common, "--set", "train.grad_accum=2", "--run-dir", str(tmp_path / "one"))
    run = tmp_path / "two"
    lmforge(
        "launch", "slurm", str(recipe_path), *common, "--set", "train.checkpoint_every=1000", "--nodes", "2",
        "--gpus-per-node", "0", "--port", str(free_port()), "--run-dir", str(run),
    )  # fmt: skip
    script = run / "launch" / "slurm-pretrain.sbatch"
    env = {
        **os.environ,
        "PATH": f"{slurm_bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SLURM_JOB_ID": "4242",
        "SLURM_NNODES": "2",
        "SLURM_JOB_NODELIST": "localhost",
    }
    job = subprocess.Popen(["bash", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not ((run / "metrics.jsonl").exists() and max(losses(run), default=0) >= 3):
        assert job.poll() is None and time.time() < deadline, job.stdout.read() if job.poll() is not None else "slow"
        time.sleep(0.2)
    job.send_signal(signal.SIGUSR1)
    out = job.communicate(timeout=300)[0]
    assert job.returncode == 0 and "asked to stop (time limit): checkpointing" in out, out
    assert (slurm_bin / "requeued").read_text().split() == ["requeue", "4242"]
    stopped_at = int((run / "checkpoints" / "latest").read_text().split("-")[1])
    assert 3 <= stopped_at < 40  # a checkpoint at the step's end, long before checkpoint_every
    again = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=600)  # requeued
    assert again.returncode == 0, again.stdout + again.stderr
    one, two = losses(tmp_path / "one"), losses(run)
    assert sorted(two) == list(range(1, 41))
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-4, abs=1e-5)
