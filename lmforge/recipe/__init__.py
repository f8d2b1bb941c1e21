"""Recipes: one TOML/YAML file describes a whole pipeline; pydantic validates it."""

from lmforge.recipe.load import apply_overrides, load_recipe, read_config_file, recipe_from_dict, validate
from lmforge.recipe.schema import (
    AdaptConfig,
    CurateConfig,
    EvalConfig,
    GenerateConfig,
    ModelConfig,
    PhaseConfig,
    Recipe,
    RunConfig,
    SftConfig,
    SftDataset,
    TokenizeConfig,
    TokenizerConfig,
    TrainConfig,
)

__all__ = [
    "AdaptConfig",
    "CurateConfig",
    "PhaseConfig",
    "EvalConfig",
    "GenerateConfig",
    "ModelConfig",
    "Recipe",
    "RunConfig",
    "SftConfig",
    "SftDataset",
    "TokenizeConfig",
    "TokenizerConfig",
    "TrainConfig",
    "apply_overrides",
    "load_recipe",
    "read_config_file",
    "recipe_from_dict",
    "validate",
]
