"""Preference tuning after SFT: DPO, conservative DPO and IPO, full or LoRA."""

from lmforge.dpo.stage import run_dpo_stage

__all__ = ["run_dpo_stage"]
