import hashlib
import time

from lmforge.rundir import fingerprint


def test_file_fingerprint_is_its_sha256_and_follows_edits(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    assert fingerprint(f)["sha256"] == hashlib.sha256(b"hello").hexdigest()
    time.sleep(0.01)
    f.write_text("hallo")  # same size: the changed mtime must still invalidate the cached hash
    assert fingerprint(f)["sha256"] == hashlib.sha256(b"hallo").hexdigest()


def test_folder_fingerprint_changes_with_content_and_names(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.bin").write_bytes(b"123")
    first = fingerprint(tmp_path / "d")
    assert first["files"] == 1 and first["bytes"] == 3
    (tmp_path / "d" / "x.bin").rename(tmp_path / "d" / "y.bin")
    renamed = fingerprint(tmp_path / "d")
    assert renamed["sha256"] != first["sha256"]
    (tmp_path / "d" / "y.bin").write_bytes(b"124")
    assert fingerprint(tmp_path / "d")["sha256"] not in (first["sha256"], renamed["sha256"])
