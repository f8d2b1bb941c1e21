"""`lmforge launch slurm`: one training stage on several nodes, as an sbatch script.

Slurm starts one task per node (`srun`), each task runs `torchrun` for the node's processes, and
the nodes meet at a c10d rendezvous on the job's first node. Every process reads the same resolved
recipe (`<run>/launch/<stage>.yaml`), so the run directory must be on storage all nodes share.

Preemption and time limits end in a checkpoint, not in lost work: Slurm signals the batch shell
(`--signal=B:USR1@<grace>`) before the limit, the script passes SIGTERM to the stage, which saves
a checkpoint at the end of its step and exits 143, and the job requeues itself; a preempted job
(SIGTERM) checkpoints the same way and Slurm requeues it (`--requeue`). The requeued job runs the
same command, which resumes from the run's latest checkpoint.
"""

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import ConfigError, LmforgeError


@dataclass(frozen=True)
class SlurmJob:
    stage: str
    recipe: Path  # the resolved recipe every process reads
    run_dir: Path
    nodes: int
    gpus_per_node: int
    nproc_per_node: int
    partition: str | None = None
    account: str | None = None
    time: str | None = None  # Slurm's time format, e.g. 2-00:00:00
    cpus_per_task: int | None = None
    port: int = 29500  # the rendezvous port on the first node
    grace_s: int = 180  # seconds before the time limit at which the stage is asked to checkpoint
    python: str = "python"


def sbatch_script(job: SlurmJob) -> str:
    """The batch script: #SBATCH header, rendezvous on the first node, srun + torchrun, requeue."""
    if job.nodes < 1 or job.nproc_per_node < 1:
        raise ConfigError("launch slurm: --nodes and --nproc-per-node must be at least 1")
    name = f"lmforge-{job.run_dir.name}-{job.stage}"
    header = [
        f"#SBATCH --job-name={name}",
        f"#SBATCH --nodes={job.nodes}",
        "#SBATCH --ntasks-per-node=1",  # one torchrun per node; it starts the node's processes
        *([f"#SBATCH --gpus-per-node={job.gpus_per_node}"] if job.gpus_per_node else []),
        *([f"#SBATCH --cpus-per-task={job.cpus_per_task}"] if job.cpus_per_task else []),
        *([f"#SBATCH --partition={job.partition}"] if job.partition else []),
        *([f"#SBATCH --account={job.account}"] if job.account else []),
        *([f"#SBATCH --time={job.time}"] if job.time else []),
        f"#SBATCH --output={job.run_dir / 'launch' / f'slurm-{job.stage}-%j.out'}",
        "#SBATCH --requeue",
        f"#SBATCH --signal=B:USR1@{job.grace_s}",
    ]
    torchrun = [
        job.python,
        "-m",
        "torch.distributed.run",
        "--nnodes=$SLURM_NNODES",
        f"--nproc-per-node={job.nproc_per_node}",
        "--rdzv-id=$SLURM_JOB_ID",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=$head:{job.port}",
        "-m",
        "lmforge",
        job.stage,
        shlex.quote(str(job.recipe)),
        "--run-dir",
        shlex.quote(str(job.run_dir)),
    ]
    return "\n".join(
        [
            "#!/bin/bash",
            f"# written by `lmforge launch slurm` for the {job.stage} stage of {job.run_dir}",
            *header,
            "set -uo pipefail",
            'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
            "",
            "# the stage checkpoints at its step's end on SIGTERM; near the time limit (USR1) the job then",
            "# requeues itself and resumes. A preempted job is requeued by Slurm; a cancelled one just stops.",
            "stop() {",
            '  echo "lmforge: asked to stop ($1): checkpointing"',
            '  kill -TERM "$step" 2>/dev/null',
            '  wait "$step"',
            '  if [ "$1" = "time limit" ]; then scontrol requeue "$SLURM_JOB_ID"; fi',
            "  exit 0",
            "}",
            "trap 'stop \"time limit\"' USR1",
            "trap 'stop SIGTERM' TERM",
            "",
            f"srun --kill-on-bad-exit=1 {' '.join(torchrun)} &",
            "step=$!",
            'wait "$step"',
            "code=$?",
            'echo "lmforge: the stage exited with code $code"',
            'exit "$code"',
            "",
        ]
    )


def write_sbatch(job: SlurmJob) -> Path:
    """`<run>/launch/slurm-<stage>.sbatch`, kept in the run directory as a record of the launch."""
    path = job.run_dir / "launch" / f"slurm-{job.stage}.sbatch"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sbatch_script(job))
    path.chmod(0o755)
    return path


def submit(script: Path) -> str:
    """`sbatch --parsable SCRIPT`; returns the job id."""
    try:
        proc = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise LmforgeError(f"sbatch not found: submit {script} on a Slurm login node") from None
    if proc.returncode != 0:
        raise LmforgeError(f"sbatch {script} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip().split(";")[0]
