"""`run_main`: how every script's main() ends, whatever happens (docs/errors.md "Errors you may see").

One wrapper for all the absl scripts, so each failure ends the same way:
- a user error (`ConfigError`, `OutputError`, any `ValueError`): one line, exit 2;
- the file system refusing a write (read-only, full, no permission), TensorFlow's
  PermissionDenied / ResourceExhausted (a GPU out of memory): one line, exit 2;
- Ctrl-C: exit 130, SIGTERM: exit 143 (128 + the signal, as a shell reports
  it), after the `finally` blocks ran: temporary files are removed, the last
  completed checkpoint is kept, and `interrupted` says how to go on.
Anything else is a bug and keeps its traceback.
"""

import signal
import sys

EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so `finally` blocks and cleanups run.

    A BaseException, like KeyboardInterrupt, so `except Exception` does not swallow it.
    """


def _raise_terminated(signum, frame):
    del signum, frame
    raise Terminated()


def run_main(name, body, *, interrupted=None):
    """Runs `body()` and turns every expected way of failing into one line and an exit code.

    Args:
        name: the script's name, the start of each message ("train.py").
        body: the script's work, a callable without arguments.
        interrupted: the line printed after Ctrl-C or SIGTERM (how to resume),
            a string or a callable returning one (None: nothing to resume).
    """
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return body()
    except (KeyboardInterrupt, Terminated) as e:
        which, code = (
            ("SIGTERM", EXIT_SIGTERM) if isinstance(e, Terminated) else ("Ctrl-C", EXIT_SIGINT)
        )
        hint = interrupted() if callable(interrupted) else interrupted
        print(f"{name}: stopped by {which}." + (f" {hint}" if hint else ""), file=sys.stderr)
        sys.exit(code)
    except ValueError as e:  # ConfigError and OutputError included.
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except OSError as e:  # A write outside keras_effnet.io (TensorBoard, TensorFlow's files).
        from keras_effnet import io  # pylint: disable=import-outside-toplevel

        refused = io.as_output_error(e, e.filename or "?", "path", unchanged=False)
        if refused is None:
            raise
        print(f"{name}: error: {refused}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except Exception as e:  # noqa: BLE001
        # TensorFlow's own file and memory errors (TensorBoard logs, SavedModel writes, a GPU
        # out of memory) are not OSErrors; matched by name so this module never imports it.
        if type(e).__name__ not in _TF_ENVIRONMENT_ERRORS:
            raise
        print(f"{name}: error: {type(e).__name__}: {_first_line(e)}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    finally:
        signal.signal(signal.SIGTERM, previous)


_TF_ENVIRONMENT_ERRORS = ("PermissionDeniedError", "ResourceExhaustedError")


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else ""
