"""keras_effnet.cli.run_main: one line and an exit code for every expected way of failing."""

import errno
import os
import signal
import sys
import time

import pytest

from keras_effnet.cli import run_main
from keras_effnet.errors import OutputError


def _exit_of(body, **kwargs):
    """Runs `run_main("x.py", body)` in a forked process; returns (exit code, stderr)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        sys.stderr = os.fdopen(write, "w")  # pytest's capture replaced the real one.
        # A pytest-xdist worker ignores SIGINT, and a fork inherits that: restore
        # Python's default, as a command started from a shell has it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            run_main("x.py", body, **kwargs)
            code = 0
        except SystemExit as e:
            code = e.code
        except BaseException:  # noqa: BLE001  (a traceback: what run_main must prevent)
            code = 99
        sys.stderr.flush()
        os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        return os.waitstatus_to_exitcode(status), f.read()


def _raise(error):
    def body():
        raise error

    return body


def _signal_self(signum):
    def body():
        os.kill(os.getpid(), signum)
        time.sleep(5)

    return body


@pytest.mark.parametrize(
    "body, code, words",
    [
        (_raise(ValueError("`x` must be 1. Received: x=2")), 2, "x.py: error: `x` must be 1"),
        (_raise(OutputError("Cannot write `output` 'a'")), 2, "x.py: error: Cannot write"),
        (
            _raise(OSError(errno.EROFS, "Read-only file system", "/ro/logs/events")),
            2,
            "x.py: error: Cannot write `path` '/ro/logs/events': read-only file system.",
        ),
        (_raise(OSError(errno.ENOSPC, "No space", "/full/x")), 2, "no space left on device"),
        (
            _raise(OSError(None, "Unable to create file (unable to open file: errno = 30, ...)")),
            2,
            "read-only file system",
        ),
        (
            _raise(type("ResourceExhaustedError", (Exception,), {})("OOM when allocating\nmore")),
            2,
            "x.py: error: ResourceExhaustedError: OOM when allocating",
        ),
        (_raise(KeyboardInterrupt()), 130, "x.py: stopped by Ctrl-C. resume: rerun"),
        (_signal_self(signal.SIGINT), 130, "x.py: stopped by Ctrl-C. resume: rerun"),
        (_signal_self(signal.SIGTERM), 143, "x.py: stopped by SIGTERM. resume: rerun"),
    ],
)
def test_expected_failures_are_one_line_and_an_exit_code(body, code, words):
    got, stderr = _exit_of(body, interrupted="resume: rerun")
    assert got == code and words in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_a_bug_keeps_its_traceback():
    got, _ = _exit_of(_raise(OSError(errno.EIO, "I/O error")))
    assert got == 99  # Re-raised: not dressed up as a user error.
    got, _ = _exit_of(_raise(KeyError("bug")))
    assert got == 99
