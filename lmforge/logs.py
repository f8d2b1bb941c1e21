"""How loud lmforge and the libraries under it are: quiet by default, everything with `--verbose`.

A stage prints its own progress and results; what transformers, torch, datasets and lm-eval say
along the way (deprecation notices, advisory warnings, per-shard bars) and llama.cpp's per-request
timings are noise to someone running `make demo`, and useful to someone debugging. One switch,
`--verbose` or `LMFORGE_LOG=debug`, brings all of it back. Libraries read their environment
switches when they are imported, so this runs before any of them is.
"""

import logging
import os
import warnings

QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # lmforge draws its own progress
}


def verbose() -> bool:
    return os.environ.get("LMFORGE_LOG", "").lower() == "debug"


def configure(loud: bool = False) -> None:
    """Quiet (the default) or loud (`loud`, or LMFORGE_LOG=debug already set). Loud is passed on to
    child processes (torchrun workers, curate's pool, llama.cpp) through LMFORGE_LOG."""
    if loud:
        os.environ["LMFORGE_LOG"] = "debug"
    if verbose():
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        logging.getLogger("lmforge").setLevel(logging.DEBUG)
        warnings.simplefilter("default")
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    # warnings a user cannot act on (a library's deprecations and advice to its own developers)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning,ignore::UserWarning")
