"""Runs the command-line probe cases of tests/commands/test_probe.py, one forked child each.

Usage: python probe_driver.py CASES.json RESULTS.json WORKDIR

TensorFlow and the package are imported once here, before any TensorFlow op
runs (a fork after the first op could inherit a half-copied thread pool); each
case then runs `scripts/<script>` as `__main__` in a fresh fork, with its own
absl flags, so 150 cases cost seconds, not 150 interpreter starts. For every
case the result records the exit code, stdout and stderr, and which files of
WORKDIR changed, appeared or disappeared.
"""

import json
import os
import runpy
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_effnet  # noqa: E402,F401  (imported once, before the forks)
from keras_effnet import export  # noqa: E402,F401
from keras_effnet.training import loop  # noqa: E402,F401

from helpers import snapshot  # noqa: E402  (tests/, this script's folder)

TIMEOUT = 60
SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")


def run_case(case, workdir, logs):
    out_path, err_path = os.path.join(logs, "out"), os.path.join(logs, "err")
    pid = os.fork()
    if pid == 0:  # child
        os.chdir(workdir)
        for fd, path in ((1, out_path), (2, err_path)):
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(handle, fd)
        sys.argv = [case["script"], *case["args"]]
        sys.path.insert(0, SCRIPTS)
        code = 0
        try:
            runpy.run_path(os.path.join(SCRIPTS, case["script"]), run_name="__main__")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001  (a traceback: what the probe must not see)
            import traceback  # pylint: disable=import-outside-toplevel

            traceback.print_exc()
            code = 99
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    # A case that does not refuse its input goes on to train or convert: it is
    # stopped after TIMEOUT seconds and reported as code -9.
    for _ in range(TIMEOUT * 10):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    with open(out_path, errors="replace") as f:
        out = f.read()
    with open(err_path, errors="replace") as f:
        err = f.read()
    return os.waitstatus_to_exitcode(status), out, err


def main():
    cases_path, results_path, workdir = sys.argv[1:4]
    with open(cases_path) as f:
        cases = json.load(f)
    logs = os.path.join(os.path.dirname(os.path.abspath(results_path)), "probe-logs")
    os.makedirs(logs, exist_ok=True)
    results = []
    for case in cases:
        before = snapshot(workdir)
        code, out, err = run_case(case, workdir, logs)
        after = snapshot(workdir)
        changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
        results.append({"id": case["id"], "code": code, "out": out, "err": err, "changed": changed})
        with open(results_path, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
