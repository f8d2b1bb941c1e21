"""Reading and writing an HF folder's safetensors one tensor at a time, so a merge of 7B models
holds one tensor of each input and at most one output shard, never a whole model."""

import json
from pathlib import Path

import torch

from lmforge.errors import CheckpointError

INDEX = "model.safetensors.index.json"


class Tensors:
    """An HF model folder's tensors by name, read lazily from whichever shard holds each."""

    def __init__(self, folder: Path):
        from safetensors import safe_open

        self.folder = folder
        index = folder / INDEX
        if index.is_file():
            where = {k: folder / v for k, v in json.loads(index.read_text())["weight_map"].items()}
        else:
            files = sorted(folder.glob("*.safetensors"))
            if not files:
                raise CheckpointError(f"{folder}: no .safetensors weights (lmforge does not load pickled weights)")
            where = {}
            for f in files:
                with safe_open(str(f), framework="pt") as h:
                    where.update(dict.fromkeys(h.keys(), f))
        self.files = {f: safe_open(str(f), framework="pt") for f in set(where.values())}
        self.where = where
        self.shapes = {k: tuple(self.files[f].get_slice(k).get_shape()) for k, f in where.items()}

    def names(self) -> list[str]:
        return sorted(self.where)

    def get(self, name: str) -> torch.Tensor:
        return self.files[self.where[name]].get_tensor(name)


class ShardWriter:
    """Writes tensors into shards of about `shard_bytes` and, for several, the index transformers
    reads; shards are written as they fill, so only one is ever held."""

    def __init__(self, folder: Path, shard_bytes: int):
        self.folder, self.shard_bytes = folder, shard_bytes
        self.pending: dict[str, torch.Tensor] = {}
        self.size = 0
        self.written: list[list[str]] = []
        self.total = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        nbytes = tensor.numel() * tensor.element_size()
        if self.pending and self.size + nbytes > self.shard_bytes:
            self._flush()
        self.pending[name] = tensor.contiguous()
        self.size += nbytes
        self.total += nbytes

    def _flush(self) -> None:
        from safetensors.torch import save_file

        save_file(self.pending, str(self.folder / f"shard-{len(self.written):05d}.safetensors"), {"format": "pt"})
        self.written.append(list(self.pending))
        self.pending, self.size = {}, 0

    def finish(self) -> None:
        """Name the shards as transformers expects: one file, or numbered files and their index."""
        if self.pending:
            self._flush()
        n = len(self.written)
        if n == 1:
            (self.folder / "shard-00000.safetensors").rename(self.folder / "model.safetensors")
            return
        weight_map = {}
        for i, names in enumerate(self.written):
            final = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            (self.folder / f"shard-{i:05d}.safetensors").rename(self.folder / final)
            weight_map.update(dict.fromkeys(names, final))
        (self.folder / INDEX).write_text(
            json.dumps({"metadata": {"total_size": self.total}, "weight_map": weight_map}, indent=2)
        )
