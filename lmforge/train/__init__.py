"""Training: the one loop every training stage runs (loop.py), its pieces (optimizer, schedule,
precision, checkpoints, resume, torchrun, trackers, Slurm), and pretraining (pretrain.py)."""

from lmforge.train.launch import run_under_torchrun, under_torchrun
from lmforge.train.model import count_params, hf_config
from lmforge.train.precision import use_bf16
from lmforge.train.pretrain import pretrain
from lmforge.train.schedule import lr_at

__all__ = ["count_params", "hf_config", "lr_at", "pretrain", "run_under_torchrun", "under_torchrun", "use_bf16"]
