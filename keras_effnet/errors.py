"""The one user-error type of the package.

Data, training, evaluation and export code raise `ConfigError` for a bad
argument, flag, dataset or run directory; the scripts print it as one line
and exit with status 2, while any other exception keeps its traceback.
"""


class ConfigError(ValueError):
    """A bad argument, flag, dataset or run directory (user error, not a bug).

    Scripts print these as one line; anything else keeps its traceback.
    """
