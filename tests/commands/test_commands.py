"""The `keras-effnet` command (keras_effnet/commands/): jobs, `--help` without TensorFlow.

Every case runs a fresh interpreter: a job's flags are defined at import, and
"TensorFlow was not imported" means nothing in a process that has it already.
"""

import os
import subprocess
import sys

import pytest

from keras_effnet import commands

import helpers

REPO = helpers.REPO
ENV = dict(os.environ, CUDA_VISIBLE_DEVICES="")

# A few flags each job's help must name; the renamed ones (issue 21) in their new spelling.
FLAGS = {
    "train": ["--model_dir", "--model", "--dataset", "--epochs", "--seed"],
    "evaluate": ["--model_path", "--split", "--num_threads"],
    "export": ["--model_path", "--mode", "--output", "--num_threads"],
    "predict": ["--model_path", "--top_k", "--num_threads"],
    "quickstart": ["--model_dir", "--mode"],
    "study": ["--models", "--output_dir", "--num_threads"],
    "grid-search": ["--start", "--output_dir", "--num_threads"],
    "profile": ["--models", "--resolution"],
}
# Flags without a default: their help starts with "(required)".
REQUIRED = {
    "train": ["--model_dir"],
    "evaluate": ["--model_path"],
    "export": ["--model_path", "--output"],
    "predict": ["--model_path"],
}

# Runs a job's help in-process as the console script does, then reports the heavy modules.
_PROBE = """
import sys
from keras_effnet import commands
try:
    commands.main(["keras-effnet", *sys.argv[1:]])
except SystemExit as e:
    code = e.code
else:
    code = 0
heavy = sorted(m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules)
print("EXIT", code, "HEAVY", ",".join(heavy) or "-")
"""


def _run(*args, prefix=(sys.executable, "-c", _PROBE)):
    return subprocess.run(
        [*prefix, *args], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120
    )


def test_the_table_matches_the_modules():
    assert set(FLAGS) == set(commands.JOBS)
    for module, _ in commands.JOBS.values():
        assert os.path.isfile(os.path.join(REPO, "keras_effnet", "commands", f"{module}.py"))


@pytest.mark.parametrize("job", sorted(commands.JOBS))
def test_help_exits_0_names_its_flags_and_imports_no_backend(job):
    out = _run(job, "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("EXIT 0 HEAVY -"), out.stdout[-500:]
    assert f"usage: keras-effnet {job} [flags]" in out.stdout
    for flag in FLAGS[job]:
        assert f"  {flag}:" in out.stdout, (flag, out.stdout[-3000:])
    for flag in REQUIRED.get(job, ()):
        assert f"  {flag}: (required)" in out.stdout, flag


def test_old_flag_names_are_hidden_aliases():
    """export's --model and --threads still parse, but its help shows only the new names."""
    out = _run("export", "--help")
    assert "  --model:" not in out.stdout and "  --threads:" not in out.stdout
    parse = (
        "from absl import flags\n"
        "import keras_effnet.commands.export\n"
        "flags.FLAGS(['x', '--model=m.keras', '--output=o.tflite', '--threads=3'])\n"
        "print(flags.FLAGS.model_path, flags.FLAGS.num_threads)\n"
    )
    aliases = _run(prefix=(sys.executable, "-c", parse))
    assert aliases.stdout.split() == ["m.keras", "3"], aliases.stderr[-2000:]


def test_help_text_is_not_printf_mangled():
    out = _run("export", "--help")
    assert "scripts/export_tflite.py" not in out.stdout and "half sparsity" in out.stdout


@pytest.mark.parametrize("args", [(), ("nosuchjob",)])
def test_a_missing_or_unknown_job_prints_the_job_list_and_exits_2(args):
    out = _run(*args, prefix=(os.path.join(os.path.dirname(sys.executable), "keras-effnet"),))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and all(job in lines[0] for job in commands.JOBS), out.stderr


def test_top_level_help_lists_the_jobs():
    out = _run("--help", prefix=(sys.executable, "-m", "keras_effnet"))
    assert out.returncode == 0
    assert all(f"  {job} " in out.stdout for job in commands.JOBS)


def test_python_m_and_the_script_wrapper_run_the_same_job():
    module = _run("predict", "--help", prefix=(sys.executable, "-m", "keras_effnet"))
    script = _run("--help", prefix=(sys.executable, os.path.join(REPO, "scripts", "predict.py")))
    assert module.returncode == 0 and script.returncode == 0
    assert "usage: keras-effnet predict [flags]" in module.stdout
    assert "usage: predict.py [flags]" in script.stdout
    assert module.stdout.split("flags:", 1)[1] == script.stdout.split("flags:", 1)[1]


def test_train_help_is_grouped_by_section():
    out = _run("train", "--help")
    titles = [l.split(":")[0] for l in out.stdout.splitlines() if l and not l.startswith(" ")]
    sections = [t for t in titles if t in ("data", "model", "recipe", "augmentation", "run")]
    assert sections == ["data", "model", "recipe", "augmentation", "run"], titles
    assert out.stdout.index("--model_dir:") > out.stdout.index("run:")


def test_the_package_imports_its_names_on_first_use():
    """`import keras_effnet` is light; public names and submodules load when used (PEP 562)."""
    code = (
        "import sys, keras_effnet\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "assert keras_effnet.layers.MBConv and keras_effnet.export.ExportOptions\n"
        "assert all(getattr(keras_effnet, name) is not None for name in keras_effnet.__all__)\n"
        "assert keras_effnet.predict.__module__ == 'keras_effnet.prediction'\n"
        "print('OK')\n"
    )
    out = _run(prefix=(sys.executable, "-c", code))
    assert out.stdout.strip() == "OK", out.stderr[-2000:]
