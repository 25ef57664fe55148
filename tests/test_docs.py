"""The README and docs/ run as written, and code cites only sections that exist (issue 21).

Every `keras-effnet <job> ...` command in a code block of README.md or docs/*.md
must name a job that exists and only flags that job defines (checked against the
job's `--helpfull`, which imports no TensorFlow); every `scripts/<name>.py` they
run must exist. Every README or docs/<page>.md section cited in
the code must be a heading of that page.
"""

import functools
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from keras_effnet import commands

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(REPO, "README.md"), *sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))]


@functools.lru_cache(maxsize=None)
def _code_lines(path):
    """Shell lines of the ```bash / ```sh / ``` blocks of a Markdown page, continuations joined."""
    lines, block, pending = [], None, ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.lstrip().startswith("```"):
                block = None if block is not None else line.strip()[3:]
                continue
            if block is None or block not in ("", "bash", "sh", "shell", "console"):
                continue
            line = line.split(" #")[0] if not line.lstrip().startswith("#") else ""
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            if (pending + line).strip():
                lines.append(pending + line)
            pending = ""
    return tuple(lines)


def _commands():
    """(page, job, [flag names]) of every keras-effnet command in the pages."""
    found = []
    for page in PAGES:
        for line in _code_lines(page):
            for segment in re.split(r"&&|\|\||;|\|", line):
                try:
                    words = shlex.split(segment)
                except ValueError:
                    continue
                for i, word in enumerate(words):
                    if word.endswith("keras-effnet") or (
                        word == "keras_effnet" and i > 0 and words[i - 1] == "-m"
                    ):
                        job = words[i + 1] if i + 1 < len(words) else None
                        if job and job.endswith(
                            ":"
                        ):  # a sample of output, "keras-effnet train: ..."
                            break
                        names = [w[2:].split("=")[0] for w in words[i + 2 :] if w.startswith("--")]
                        found.append((os.path.relpath(page, REPO), job, names))
                        break
    return found


COMMANDS = _commands()


@functools.lru_cache(maxsize=None)
def _flags_of(job):
    proc = subprocess.run(
        [sys.executable, "-m", "keras_effnet", job, "--helpfull"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(re.findall(r"^\s+--(?:\[no\])?([A-Za-z0-9_]+):", proc.stdout, re.M))


def test_the_pages_show_commands():
    jobs = {job for _, job, _ in COMMANDS}
    assert {"train", "evaluate", "export", "predict", "quickstart"} <= jobs, jobs


@pytest.mark.parametrize(
    "page, job, names", COMMANDS, ids=[f"{p}:{j}:{len(n)}" for p, j, n in COMMANDS]
)
def test_every_command_and_flag_exists(page, job, names):
    if job in ("--help", "-h"):
        return
    assert job in commands.JOBS, f"{page}: unknown job {job!r}"
    defined = _flags_of(job)
    for name in names:
        bare = name[2:] if name.startswith("no") and name[2:] in defined else name
        assert bare in defined or name in ("help", "helpfull"), f"{page}: {job} has no --{name}"


def test_every_script_the_pages_run_exists():
    missing = []
    for page in PAGES:
        for line in _code_lines(page):
            for script in re.findall(r"scripts/[A-Za-z0-9_]+\.(?:py|sh)", line):
                if not os.path.exists(os.path.join(REPO, script)):
                    missing.append((os.path.relpath(page, REPO), script))
    assert not missing


@functools.lru_cache(maxsize=None)
def _headings(page):
    with open(os.path.join(REPO, page), encoding="utf-8") as f:
        return tuple(line.lstrip("#").strip().lower() for line in f if line.startswith("#"))


def test_code_cites_only_sections_that_exist():
    cite = re.compile(r'(README|docs/[a-z_]+\.md)(?:\'s)?,? "([^"]+)"')
    missing = []
    sources = glob.glob(os.path.join(REPO, "**", "*.py"), recursive=True)
    for path in sources:
        if f"{os.sep}.venv{os.sep}" in path or f"{os.sep}build{os.sep}" in path:
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for page, section in cite.findall(text):
            page = "README.md" if page == "README" else page
            if not os.path.exists(os.path.join(REPO, page)):
                missing.append((os.path.relpath(path, REPO), page, section))
                continue
            wanted = re.sub(r"\s*\n\s*(#\s*)?", " ", section).lower()
            if not any(wanted in heading for heading in _headings(page)):
                missing.append((os.path.relpath(path, REPO), page, section))
    assert not missing, missing
