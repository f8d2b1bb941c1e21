"""Read a recipe file, merge the CLI's flag values and `--set section.key=value` overrides, validate.

Both are applied to the raw dictionary before validation, so that they go through exactly the
same checks as the file and a misspelt key fails the same way. Flag values arrive as typed
data (a nested dict: a path with a backslash or a quote stays as it is); `--set` text is read as
TOML for the user who types it. Precedence: file, then flags, then `--set`.
"""

import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lmforge.errors import ConfigError
from lmforge.recipe.schema import Recipe


def read_config_file(path: str | Path, what: str = "recipe") -> dict[str, Any]:
    """Parse a .toml, .yaml or .yml file (a recipe, a task spec) into a plain dictionary."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: a {what} must be a mapping of keys")
            return data
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    raise ConfigError(f"{path}: {what} must end in .toml, .yaml or .yml")


def parse_value(text: str) -> Any:
    """Read an override value as TOML (numbers, booleans, lists, quoted strings), else as a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with each `a.b.c=value` override set."""
    out = _deep_copy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected section.key=value")
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a section")
            node = child
        node[parts[-1]] = parse_value(value.strip())
    return out


def recipe_from_dict(raw: dict[str, Any], source: str = "<recipe>") -> Recipe:
    """Validate a raw dictionary; the first problem becomes a one-line ConfigError naming the key."""
    return validate(Recipe, raw, source)


def validate(model: type[BaseModel], raw: dict[str, Any], source: str):
    """`model` from `raw`, or a one-line ConfigError naming the first bad key and where it is."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{source}: unknown key '{key}'") from None
        raise ConfigError(f"{source}: {key}: {err['msg']}") from None


def merge_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `raw` with `values` (nested like the recipe) merged in, section by section."""
    out = _deep_copy(raw)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def load_recipe(
    path: str | Path | None, overrides: list[str] | None = None, values: dict[str, Any] | None = None
) -> Recipe:
    """Load a recipe file (or defaults when `path` is None) with flag `values` and `--set`
    overrides applied."""
    raw = read_config_file(path) if path else {}
    raw = apply_overrides(merge_values(raw, values or {}), overrides or [])
    return recipe_from_dict(raw, source=str(path) if path else "--set")


def _deep_copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}
