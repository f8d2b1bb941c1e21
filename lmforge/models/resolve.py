"""Model reference -> local HF folder (model or adapter), whatever form the reference takes."""

from pathlib import Path

from lmforge.errors import CheckpointError


def is_model_dir(path: Path) -> bool:
    """An HF model folder, or a peft adapter folder (which names its base)."""
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def newest_in_run(run_dir: Path, exclude: tuple[str, ...] = ()) -> Path | None:
    """A run's newest model in stage order: the preference-tuned model (`dpo`), the chat model
    (`sft`), its adapter, the adapted model (`adapt`), the newest pretrain checkpoint; `exclude`
    skips a stage's own output (a rerun of `dpo` starts again from the chat model)."""
    for newest_first in ("dpo/model", "chat", "sft/adapter", "adapted"):
        if newest_first not in exclude and is_model_dir(run_dir / newest_first):
            return run_dir / newest_first
    pointer = run_dir / "checkpoints" / "latest"
    if pointer.is_file():
        ckpt = run_dir / "checkpoints" / pointer.read_text().strip()
        if (ckpt / "config.json").is_file():
            return ckpt
    return None


def looks_like_hub_id(ref: str) -> bool:
    """`owner/name` that is not a local path (no such file, not starting with . or /)."""
    return ref.count("/") == 1 and not ref.startswith((".", "/", "~")) and not Path(ref).exists() \
        and all(part.strip() for part in ref.split("/"))


def resolve_model_dir(ref: str | Path) -> Path:
    """The local folder behind any model reference; GGUF files and Hub ids are materialised first."""
    path = Path(ref).expanduser()
    if path.suffix == ".gguf":
        from lmforge.models.gguf import gguf_to_folder

        if not path.is_file():
            raise CheckpointError(f"{path}: GGUF file not found")
        return gguf_to_folder(path)
    if path.is_dir():
        if is_model_dir(path):
            return path
        found = newest_in_run(path)
        if found is not None:
            return found
        raise CheckpointError(f"{path}: not a model folder (no config.json), adapter, nor a run with a model")
    if looks_like_hub_id(str(ref)):
        from lmforge.models.hub import download

        return download(str(ref))
    if path.exists():
        raise CheckpointError(f"{path}: not a model folder, run, GGUF file or Hub id")
    raise CheckpointError(f"{ref}: no such model folder, run, GGUF file or Hub id")
