"""`lmforge launch slurm`: a training stage on a Slurm cluster (an sbatch script, submitted if asked)."""

import sys
from typing import Annotated, Optional

import typer

from lmforge.cli.common import RecipeArg, RunDirOpt, SetOpt, console, load

launch_app = typer.Typer(help="Launch a training stage on a cluster.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(launch_app, name="launch")
    launch_app.command("slurm")(slurm)


def slurm(
    recipe: RecipeArg = None,
    stage: Annotated[str, typer.Option(help="The training stage to run.")] = "pretrain",
    nodes: Annotated[int, typer.Option(help="Nodes (one torchrun per node).")] = 1,
    gpus_per_node: Annotated[int, typer.Option(help="GPUs per node (0: CPU nodes).")] = 8,
    nproc_per_node: Annotated[
        Optional[int], typer.Option(help="Processes per node (default: one per GPU, 1 without GPUs).")
    ] = None,
    partition: Annotated[Optional[str], typer.Option(help="Slurm partition.")] = None,
    account: Annotated[Optional[str], typer.Option(help="Slurm account.")] = None,
    time: Annotated[
        Optional[str], typer.Option(help="Time limit, e.g. 2-00:00:00 (requeued with a checkpoint).")
    ] = None,
    cpus_per_task: Annotated[Optional[int], typer.Option(help="CPUs per node's task.")] = None,
    port: Annotated[int, typer.Option(help="Rendezvous port on the first node.")] = 29500,
    submit: Annotated[bool, typer.Option("--submit", help="Submit the script with sbatch.")] = False,
    run_dir: RunDirOpt = None,
    set: SetOpt = None,
):
    """Write <run>/launch/slurm-STAGE.sbatch (srun + torchrun, c10d rendezvous, requeue on preemption)."""
    from lmforge.errors import ConfigError
    from lmforge.pipeline import DISTRIBUTED, launch_recipe, run_dir_for
    from lmforge.train.slurm import SlurmJob, write_sbatch
    from lmforge.train.slurm import submit as sbatch

    if stage not in DISTRIBUTED:
        raise ConfigError(
            f"launch slurm --stage {stage}: runs in one process (distributed: {', '.join(sorted(DISTRIBUTED))})"
        )
    r = load(recipe, {}, set)
    # every node reads the run directory, so it is named absolutely (on storage the nodes share)
    run = run_dir_for(r, run_dir).resolve()
    job = SlurmJob(
        stage=stage,
        recipe=launch_recipe(r, run, stage).resolve(),
        run_dir=run,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        nproc_per_node=nproc_per_node or max(1, gpus_per_node),
        partition=partition,
        account=account,
        time=time,
        cpus_per_task=cpus_per_task,
        port=port,
        python=sys.executable,  # the same interpreter (and environment) on every node, as on shared storage
    )
    script = write_sbatch(job)
    console.print(f"sbatch script: {script}")
    if submit:
        console.print(f"submitted: job {sbatch(script)}")
    else:
        console.print(f"submit it with: sbatch {script}")
