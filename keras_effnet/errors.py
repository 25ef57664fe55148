"""The package's user-error types.

Data, training, evaluation and export code raise `ConfigError` for a bad
argument, flag, dataset or run directory, and its subclass `OutputError` for
an output that may not or cannot be written; the scripts print them as one
line and exit with status 2 (`keras_effnet.cli.run_main`), while any other
exception keeps its traceback.
"""


class ConfigError(ValueError):
    """A bad argument, flag, dataset or run directory (user error, not a bug).

    Scripts print these as one line; anything else keeps its traceback.
    """


class OutputError(ConfigError):
    """An output the package may not or cannot write, named in one line.

    Raised when a write would replace a non-empty directory or a path of the
    other kind (file vs directory) without `overwrite` (docs/training.md
    "Output policy"), when a run directory is locked by another process, and when the
    file system refuses the write (read-only, full, no permission). Whatever
    was on disk before is left as it was.
    """
