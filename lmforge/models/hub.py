"""Hub id -> local snapshot, through huggingface_hub (safetensors, configs, tokenizer files only)."""

from pathlib import Path

from lmforge.errors import CheckpointError

PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]


def download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=PATTERNS))
    except Exception as e:  # offline, unknown repo, gated: one line naming the id and the Hub
        raise CheckpointError(
            f"{repo_id}: not a local model and not downloadable from the Hugging Face Hub "
            f"({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from None
