"""The two commands a new user runs (README "Set up"): what `make demo` installs, and the
documented shell completion."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_rule(target):
    """The prerequisites and recipe lines of a Makefile rule."""
    text = (ROOT / "Makefile").read_text()
    m = re.search(rf"^{re.escape(target)}:([^\n]*)\n((?:\t[^\n]*\n)*)", text, re.M)
    assert m, target
    return m.group(1).split(), m.group(2)


def test_make_demo_installs_the_package_alone():
    deps, _ = make_rule("demo")
    assert deps == ["$(DEMO_STAMP)"]
    _, recipe = make_rule("$(DEMO_STAMP)")
    assert "pip install -q -e ." in recipe and "[test]" not in recipe


def test_shell_completion_works_as_documented():
    assert "_FTRL_COMPLETE=bash_source ftrl" in (ROOT / "README.md").read_text()
    env = dict(os.environ, _FTRL_COMPLETE="bash_source")
    r = subprocess.run([sys.executable, "-c", "from ftrl_cli.cli import main; main(prog_name='ftrl')"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert "_ftrl_completion" in r.stdout
