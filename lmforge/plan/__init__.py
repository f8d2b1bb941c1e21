"""Plan stage: compute-optimal model and data sizes for a budget (Chinchilla)."""

from lmforge.plan.chinchilla import GPUS, Plan, plan_for_compute, plan_for_params

__all__ = ["GPUS", "Plan", "plan_for_compute", "plan_for_params"]
