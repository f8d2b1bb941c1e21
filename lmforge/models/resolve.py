"""Model reference -> local HF folder (model or adapter), whatever form the reference takes."""

from pathlib import Path

from lmforge.errors import CheckpointError
from lmforge.models.runs import is_model_dir, latest_checkpoint, run_model


def looks_like_hub_id(ref: str) -> bool:
    """`owner/name` that is not a local path (no such file, not starting with . or /)."""
    return (
        ref.count("/") == 1
        and not ref.startswith((".", "/", "~"))
        and not Path(ref).exists()
        and all(part.strip() for part in ref.split("/"))
    )


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
        found = latest_checkpoint(path) or run_model(path)  # a checkpoints folder: its latest
        if found is not None:
            return found
        raise CheckpointError(f"{path}: not a model folder (no config.json), adapter, nor a run with a model")
    if looks_like_hub_id(str(ref)):
        from lmforge.models.hub import download

        return download(str(ref))
    if path.exists():
        raise CheckpointError(f"{path}: not a model folder, run, GGUF file or Hub id")
    raise CheckpointError(f"{ref}: no such model folder, run, GGUF file or Hub id")
