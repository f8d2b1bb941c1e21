"""The one exception family of lmforge.

User mistakes (a missing file, a bad config key, a malformed JSONL line) raise a subclass of
`LmforgeError` whose message names the file, line or key at fault; the CLI prints it on one
line and exits non-zero instead of showing a traceback.
"""


class LmforgeError(Exception):
    """Base class for every error caused by user input rather than a bug."""


class ConfigError(LmforgeError):
    """A recipe or override is invalid (unknown key, bad value, unreadable file)."""


class DataError(LmforgeError):
    """Input data is missing or malformed."""


class CheckpointError(LmforgeError):
    """A checkpoint or model directory is missing or not loadable."""
