import pytest

from lmforge.errors import ConfigError
from lmforge.recipe import apply_overrides, load_recipe


def test_unknown_key_is_rejected_naming_key_and_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nlrr = 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown key 'train\.lrr'"):
        load_recipe(path)


def test_unknown_section_is_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trian:\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        load_recipe(path)


def test_override_sets_typed_values_and_is_validated(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("[train]\nlr = 0.1\n")
    r = load_recipe(path, ["train.lr=3e-4", "train.compile=true", "run.stages=['pretrain']", "run.name=x y"])
    assert r.train.lr == 3e-4 and r.train.compile is True and r.run.stages == ["pretrain"] and r.run.name == "x y"
    with pytest.raises(ConfigError, match="unknown key 'train.warmup'"):
        load_recipe(path, ["train.warmup=3"])
    with pytest.raises(ConfigError, match="train.lr"):
        load_recipe(path, ["train.lr=-1"])


def test_bad_values_name_the_key():
    with pytest.raises(ConfigError, match="model: .*num_kv_heads"):
        load_recipe(None, ["model.num_heads=4", "model.num_kv_heads=3"])
    with pytest.raises(ConfigError, match="sliding_window needs family"):
        load_recipe(None, ["model.sliding_window=64"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.toml")
    bad = tmp_path / "broken.toml"
    bad.write_text("[train\n")
    with pytest.raises(ConfigError, match="broken.toml: invalid TOML"):
        load_recipe(bad)


def test_apply_overrides_does_not_mutate_input():
    raw = {"train": {"lr": 1.0}}
    out = apply_overrides(raw, ["train.lr=2.0"])
    assert raw["train"]["lr"] == 1.0 and out["train"]["lr"] == 2.0
    with pytest.raises(ConfigError, match="expected section.key=value"):
        apply_overrides(raw, ["train.lr"])


def test_demo_recipe_validates():
    from tests.conftest import ROOT

    r = load_recipe(ROOT / "recipes" / "demo.toml")
    assert r.run.stages[:2] == ["curate", "tokenizer"] and r.model.family == "llama"
    assert r.tokenize.train == ["{run}/curate/data/en"]  # expanded to the run directory by the pipeline
