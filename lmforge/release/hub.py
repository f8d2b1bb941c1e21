"""Upload a release folder (GGUF files included) to the Hugging Face Hub."""

import os
from pathlib import Path

from lmforge.errors import LmforgeError


def push_release(root: str | Path, repo_id: str, private: bool = False) -> str:
    """Create the model repo if needed and upload the folder; the token comes from HF_TOKEN or the
    huggingface_hub login. Any network or Hub failure is one line naming the Hub."""
    from huggingface_hub import HfApi

    root = Path(root)
    if not (root / "provenance.json").is_file():
        raise LmforgeError(f"{root}: not a release folder (run `lmforge release RUN` first)")
    api = HfApi(token=os.environ.get("HF_TOKEN"))
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=str(root), repo_id=repo_id, repo_type="model", commit_message="lmforge release"
        )
    except Exception as e:  # noqa: BLE001 - requests/httpx/HfHubHTTPError/OSError: all one message
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise LmforgeError(f"could not push to the Hugging Face Hub ({repo_id}): {first[:200]}") from None
    return str(getattr(info, "commit_url", info))
