"""Help texts, the Makefile and the docs name the matrices and defaults the registry has."""

import re
import tomllib
from pathlib import Path

import pytest

from dnnbench.definitions.matrices import DEFAULT_MATRIX, MATRICES, RENAMED
from dnnbench.frontends.cli import build_parser, main
from dnnbench.frontends.options import REPEATED_MATRIX

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "docs").rglob("*.yml"))]


def _subparsers():
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return action.choices


def _matrix_option(command: str):
    return next((a for a in _subparsers()[command]._actions if a.dest == "matrix"), None)


def test_every_matrix_option_names_every_matrix_and_its_real_default():
    commands = [c for c in _subparsers() if _matrix_option(c) is not None]
    assert {"list", "run", "profile", "ab", "history", "harness", "scaling", "tune"} <= set(commands)
    for command in commands:
        option = _matrix_option(command)
        text = " ".join(option.help.split())  # the --matrix option's own help, not the whole page
        missing = [name for name in MATRICES if name not in text]
        assert not missing, f"{command} --matrix help leaves out {missing}"
        default = option.default or "the study's problems"
        assert f"default {default})" in text or f"default: {default})" in text, (command, text)


def test_commands_meant_for_many_runs_default_to_the_small_matrix():
    defaults = {command: _matrix_option(command).default for command in ("list", "run", "profile", "ab", "history")}
    assert defaults == {
        "list": DEFAULT_MATRIX,
        "run": DEFAULT_MATRIX,
        "profile": DEFAULT_MATRIX,
        "ab": REPEATED_MATRIX,
        "history": REPEATED_MATRIX,
    }
    assert REPEATED_MATRIX in MATRICES and DEFAULT_MATRIX in MATRICES


def test_every_command_says_what_it_does_in_its_own_help():
    for command, parser in _subparsers().items():
        assert parser.description and parser.description in parser.format_help().replace("\n", " "), command


def test_the_makefile_defaults_to_the_registrys_matrix_and_lists_them_all():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^MATRIX \?= (\S+)$", makefile, re.M).group(1) == DEFAULT_MATRIX
    usage = re.search(r"MATRIX=([a-z|]+)\]", makefile).group(1).split("|")
    assert set(usage) == set(MATRICES)


def test_every_matrix_the_docs_name_exists():
    named = {
        (path.name, m)
        for path in DOCS
        for m in re.findall(r"(?:MATRIX=|--matrix[ =])([a-z][a-z0-9_-]*)", path.read_text(encoding="utf-8"))
    }
    refused = {m for path in DOCS for m in re.findall(r"unknown matrix '([^']+)'", path.read_text(encoding="utf-8"))}
    unknown = sorted((where, m) for where, m in named if m not in MATRICES and m not in RENAMED and m not in refused)
    assert not unknown, f"matrices named in docs but not in the registry: {unknown}"


def test_the_docs_call_the_installed_command_not_python_dash_m():
    commands = set(_subparsers())
    stale = [
        (p.name, c)
        for p in DOCS
        for c in re.findall(r"python -m dnnbench ([a-z][a-z-]*)", p.read_text(encoding="utf-8"))
        if c in commands
    ]
    assert not stale, f"use `dnnbench …` (the console command) in {stale}"


def test_version_is_the_projects(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"dnnbench {version}"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_covers_every_subcommand_and_a_plan_option(capsys, shell):
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for command in _subparsers():
        assert command in script
    assert "--matrix" in script
