"""Release: a run turned into a folder a stranger can load, read, verify and republish (model card,
data card, MOF class, provenance, licences), and its upload to the Hub."""

from lmforge.release.build import build_release
from lmforge.release.hub import push_release
from lmforge.release.provenance import is_release, rehash_release, verify_release

__all__ = ["build_release", "is_release", "push_release", "rehash_release", "verify_release"]
