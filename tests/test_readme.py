"""The README as a newcomer uses it: its runnable blocks run, and every relative link in it and docs/ resolves.

A block is runnable when the line before its fence is `<!-- runnable -->` (GitHub still renders it as bash).
The blocks run in order with bash (`set -e`), in a temporary folder that holds a small real run at
results/latest, made with the project's own `dnnbench run`, as `make bench` leaves one; PATH starts at the
venv's bin, so `dnnbench` is the installed console command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
MARKER = "<!-- runnable -->"
MIN_RUNNABLE_BLOCKS = 4  # removing the markers must fail this test, not quietly run nothing
# One small case of the smoke matrix (`dnnbench list --matrix smoke`): 2,000 Fashion-MNIST images, one epoch.
SMALL_CASE = "fashion-mnist_b100_adam_tensor_e1_n2000_v1000_ev500_cpu"
FENCE = re.compile(r"^(```+|~~~+)(.*)$")


def runnable_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the fence, code) of every block marked runnable, in order."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines, start=1):
        if line.strip() != MARKER:
            continue
        opening = FENCE.match(lines[number]) if number < len(lines) else None
        assert opening and opening.group(2).strip() in ("bash", "sh"), (
            f"README.md:{number}: {MARKER} must be followed directly by a ```bash fence"
        )
        body = []
        for inner in lines[number + 1 :]:
            if inner.startswith(opening.group(1)):
                break
            body.append(inner)
        else:
            raise AssertionError(f"README.md:{number + 1}: the runnable block is never closed")
        blocks.append((number + 1, "\n".join(body)))
    return blocks


def test_the_readme_marks_enough_runnable_blocks_and_none_is_empty():
    blocks = runnable_blocks(README.read_text())
    assert len(blocks) >= MIN_RUNNABLE_BLOCKS, f"only {len(blocks)} blocks marked {MARKER} in README.md"
    for line, code in blocks:
        commands = [c for c in code.splitlines() if c.strip() and not c.strip().startswith("#")]
        assert commands, f"README.md:{line}: the runnable block holds no command"


def test_the_readme_stays_a_front_door():
    lines = README.read_text().splitlines()
    long = [f"README.md:{n}: {len(line)} characters" for n, line in enumerate(lines, start=1) if len(line) > 120]
    assert long == []
    assert "python -m dnnbench" not in README.read_text(), "the README uses the console command `dnnbench`"


def venv_bin() -> Path:
    """The folder of the installed `dnnbench` console script: the repo's .venv, else this interpreter's."""
    for folder in (ROOT / ".venv" / "bin", Path(sys.executable).parent):
        if (folder / "dnnbench").exists():
            return folder
    pytest.fail("no installed `dnnbench` console script: run `.venv/bin/pip install -e . --no-deps` once")


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A folder as `make bench` leaves it (a real run at results/latest), and the environment to use it."""
    folder = tmp_path_factory.mktemp("newcomer")
    env = {**os.environ, "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = folder / "results" / "smoke-cpu-readme"
    made = subprocess.run(
        ["dnnbench", "run", "--matrix", "smoke", "--case", SMALL_CASE, "--results", str(run)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    (folder / "results" / "latest").symlink_to(run.name)
    return folder, env


@pytest.mark.slow
def test_the_readme_runnable_blocks_run_after_make_bench(newcomer):
    folder, env = newcomer
    assert shutil.which("dnnbench", path=env["PATH"]) == str(venv_bin() / "dnnbench")
    blocks = runnable_blocks(README.read_text())
    assert blocks
    for index, (line, code) in enumerate(blocks, start=1):
        done = subprocess.run(
            ["bash", "-c", "set -eo pipefail\n" + code],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (
            f"runnable block {index} of {len(blocks)} (README.md:{line}) exited {done.returncode}:\n{code}\n"
            f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
        )


# Links: [text](target), ![alt](target) and [label]: target, outside code.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code, with inline code spans removed."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line.strip())
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line.strip().startswith(fence) and not line.strip()[len(fence) :].strip():
            fence = None
        elif fence is None:
            out.append((number, re.sub(r"`+[^`]*`+", "", line)))
    return out


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    seen: dict[str, int] = {}
    found = set()
    fence = None
    for line in path.read_text().splitlines():
        opening = FENCE.match(line.strip())
        if fence is None and opening:
            fence = opening.group(1)
            continue
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip()[len(fence) :].strip():
                fence = None
            continue
        heading = HEADING.match(line)
        if not heading:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(2))  # a link's text only
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def markdown_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def relative_links(path: Path) -> list[tuple[int, str]]:
    links = []
    for number, line in prose_lines(path.read_text()):
        targets = INLINE_LINK.findall(line) + [m.group(1) for m in [REFERENCE_LINK.match(line)] if m]
        links += [(number, t) for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]
    return links


def test_the_readme_and_docs_have_relative_links():
    assert len(relative_links(README)) >= 10  # the parser finds the links it is meant to check


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    broken = []
    for number, target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not resolved.exists():
            broken.append(f"{where}: no such file")
        elif ROOT not in resolved.parents and resolved != ROOT:
            broken.append(f"{where}: points outside the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{where}: no heading with that anchor")
    assert broken == []
