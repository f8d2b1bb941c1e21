"""Small file primitives shared by every stage: atomic writes (of a file, or of a whole folder),
content hashes and fingerprints, the user cache."""

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def user_cache_dir(*parts: str) -> Path:
    """lmforge's per-user cache (LMFORGE_CACHE, else ~/.cache/lmforge): what is derived once per
    machine, such as converted GGUF models and compiled kernels."""
    return Path(os.environ.get("LMFORGE_CACHE", Path.home() / ".cache" / "lmforge")).joinpath(*parts)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file + rename so a reader never sees half a file, even after a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def written_aside(folder: str | Path):
    """A folder filled under a hidden temporary name and renamed into place only when the block
    ends without an error: a crash or a kill never leaves a half-written folder that looks finished
    (a checkpoint, a converted model, a resume state). Yields the temporary folder to fill."""
    folder = Path(folder)
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    yield partial
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(partial, folder)


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=4096)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """Keyed by size and mtime: stages of one run fingerprint the same files (sources for
    meta.json and the manifest, a checkpoint for eval and generate), and each is read once."""
    return sha256_file(path)


def fingerprint(path: str | Path) -> dict:
    """sha256 and size of a file; for a folder, sha256 over each file's relative path and sha256."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    folder = hashlib.sha256()
    size = 0
    for f in files:
        st = f.stat()
        digest = _file_sha256(str(f.resolve()), st.st_size, st.st_mtime_ns)
        folder.update(f"{f.relative_to(path) if path.is_dir() else f.name}\0{digest}\n".encode())
        size += st.st_size
    sha = folder.hexdigest() if path.is_dir() else digest
    return {"path": str(path), "sha256": sha, "bytes": size, "files": len(files)}
