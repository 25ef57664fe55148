"""The `keras-effnet` command: one absl job per subcommand (issue 21).

    keras-effnet train --model=lite0 --model_dir=runs/x
    python -m keras_effnet train --help          # the same, without the console script

Each job lives in `keras_effnet/commands/<job>.py`: its flags and `main(argv)`,
the one implementation (`scripts/<name>.py` are thin wrappers around `run_job`).
Flag definitions import neither Keras nor TensorFlow, so `--help` answers at
once; the backend is imported quietly (`keras_effnet._quiet_import`) only after
the flags are parsed.
"""

import importlib
import os
import sys

PROG = "keras-effnet"

# job -> (module in keras_effnet.commands, one-line summary). A table, not imports: two job
# modules in one process would define the same flag names twice.
JOBS = {
    "train": ("train", "train a model in a resumable run directory"),
    "evaluate": ("evaluate", "top-1 / top-5 / loss of .keras or .tflite models on a split"),
    "export": ("export", "export a trained model to a verified .tflite (or SavedModel)"),
    "predict": ("predict", "top-k classes of image files or folders"),
    "quickstart": ("quickstart", "train, evaluate, export int8 and verify, end to end"),
    "study": ("study", "params, FLOPs, time, memory and accuracy of several models"),
    "grid-search": ("grid_search", "the paper's alpha/beta/gamma grid search, small scale"),
    "profile": ("profile", "parameters and FLOPs of every variant"),
}
EXIT_USAGE = 2
_HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")


def usage_line():
    """The one-line job list printed for a missing or unknown job."""
    return f"usage: {PROG} {{{','.join(JOBS)}}} [flags]  ('{PROG} <job> --help' lists its flags)"


def main(argv=None):
    """`keras-effnet <job> [flags]`: runs the job's absl main (the console entry point)."""
    argv = sys.argv if argv is None else argv
    job = argv[1] if len(argv) > 1 else None
    if job in ("--help", "-h", "help"):
        print(usage_line())
        print("\njobs:")
        for name, (_, summary) in JOBS.items():
            print(f"  {name:<12} {summary}")
        return 0
    if job not in JOBS:
        problem = "give a job" if job is None else f"unknown job {job!r}"
        print(f"{PROG}: error: {problem}. {usage_line()}", file=sys.stderr)
        return EXIT_USAGE
    return run_job(job, argv[2:])


def console_main():
    """The `keras-effnet` console script."""
    sys.exit(main())


def prog():
    """The running command's name for messages ("keras-effnet train", or "train.py")."""
    return sys.argv[0]


def run_job(job, args, prog_name=None):
    """Parses `args` with the job's flags and runs its main, as `prog_name` (absl `app.run`).

    `--help` (and -h, --helpshort, --helpfull) prints the job's flags and exits 0 before
    anything heavy is imported; absl's own help flag exits 1 (issue 21). A flag that
    does not parse (unknown, a bad value, a required one missing) is one line on stderr,
    "keras-effnet <job>: error: <absl's message naming the flag>", and exit 2.
    """
    module = importlib.import_module(f"keras_effnet.commands.{JOBS[job][0]}")
    prog_name = prog_name or f"{PROG} {job}"
    sys.argv = [prog_name, *args]  # absl's usage messages name sys.argv[0].
    options = args[: args.index("--")] if "--" in args else args
    if any(a in _HELP_FLAGS for a in options):
        print(help_text(module, prog_name, full="--helpfull" in options))
        sys.exit(0)
    from absl import app

    app.run(
        lambda argv: _main(module, argv),
        argv=sys.argv,
        flags_parser=lambda argv: _parse_flags(prog_name, argv),
    )


def _parse_flags(prog_name, argv):
    """absl's flag parsing, its errors as one line and exit 2 (like every user error).

    absl itself prints "FATAL Flags parsing error" and exits 1 (issue 21).
    """
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        message = " ".join(str(e).split())  # absl's message names the flag; one line.
        print(f"{prog_name}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def help_text(module, prog_name, full=False):
    """The job's docstring, then its flags grouped by the module that defines them."""
    from absl import flags

    from keras_effnet.config_flags import heading

    doc = (module.__doc__ or "").strip()
    text = [f"usage: {prog_name} [flags]", "", doc, "", "flags:"]
    for name in getattr(module, "FLAG_MODULES", (module.__name__,)):
        # absl heads each group with the module's name: the job's own flags go without a
        # heading, a configuration section under its heading ("data: ...", config_flags).
        lines = flags.FLAGS.module_help(name).strip("\n").splitlines()[1:]
        if name != module.__name__:
            lines.insert(0, "\n" + (heading(name) or name))
        text += lines
    if full:
        text += ["", "all flags, absl's included:", flags.FLAGS.get_help()]
    return "\n".join(text)


def define_old_name(old, new):
    """Keeps the old flag name `--old` working as an alias of `--new` (issue 21's renames).

    Defined from this module, so the job's `--help` lists only the new name;
    `--helpfull` shows the alias.
    """
    from absl import flags

    flags.DEFINE_alias(old, new)


def _main(module, argv):
    from absl import flags
    from absl import logging as absl_logging

    if getattr(module, "IMPORTS_BACKEND", True):
        from keras_effnet import _quiet_import

        # Not TF_CPP_MIN_LOG_LEVEL itself: the quiet import sets it, and an earlier import of
        # the backend (a flag module's) would then read as the user's request.
        verbose = "verbose" in flags.FLAGS and flags.FLAGS["verbose"].value == 2
        _quiet_import.import_backend_quietly(
            native_logs=_quiet_import.native_logs_requested() or verbose
        )
        # TensorFlow's Python INFO lines ("Assets written to ...") go through absl: off unless
        # asked for (--verbose=2, KERAS_EFFNET_NATIVE_LOGS=1), whatever TF_CPP_MIN_LOG_LEVEL says.
        if not (verbose or os.environ.get("KERAS_EFFNET_NATIVE_LOGS") == "1"):
            absl_logging.set_verbosity(absl_logging.WARNING)
    from absl import app

    try:
        return module.main(argv)
    except app.UsageError as e:  # A job's own check of its flags: one line, exit 2, as above.
        print(f"{prog()}: error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
