"""The README and docs/: their examples run as written, their links hold, and the architecture
page matches the tree.

Examples run in this process with training cut to a few steps (the fixture below, which the
pages do not show) and `../shared/data` pointed at the test data folder. Shell examples run the
`infogan` commands of each line through the CLI's `main`; `infogan explore` (a server that runs
until stopped) and the set-up commands (pip, venv, pytest: CI runs those itself) are not run.
"""

import re
import runpy
import shlex
from pathlib import Path

import pytest

import infogan.training.run
from infogan.cli import build_parser, main
from infogan.config import Config

REPO = Path(__file__).resolve().parents[1]
PAGES_WITH_EXAMPLES = ["README.md", "docs/python.md"]
EXAMPLE_STEPS = 3


def _blocks(page: str, language: str) -> list[str]:
    text = (REPO / page).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _commands(block: str) -> list[str]:
    """The `infogan` commands of a shell block, one per `&&`-separated part of each line."""
    parts = [part.strip() for line in block.splitlines() for part in line.split("&&")]
    return [part for part in parts if part.startswith("infogan ") and not part.startswith("infogan explore")]


@pytest.fixture
def short_training(monkeypatch, tmp_path, data_dir):
    """Every training an example starts stops after EXAMPLE_STEPS steps, in tmp_path."""
    decide = infogan.training.run.training_config

    def capped(*args, **kwargs):
        config, snapshot = decide(*args, **kwargs)
        short: Config = config.replace(**{"optim.steps": min(config.optim.steps, EXAMPLE_STEPS),
                                          "logging.log_every": 1, "logging.tensorboard": False})  # fmt: skip
        return short, snapshot

    monkeypatch.setattr(infogan.training.run, "training_config", capped)
    monkeypatch.chdir(tmp_path)
    return str(data_dir)


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES)
def test_the_examples_of_a_page_run_as_written(page, short_training, tmp_path, capsys):
    shell = [command for block in _blocks(page, "sh") for command in _commands(block)]
    python = _blocks(page, "python")
    assert shell or python, f"{page} has no examples"
    for command in shell:
        argv = shlex.split(command.replace("../shared/data", short_training))[1:]
        assert main(argv) == 0, f"{page}: {command}\n{capsys.readouterr().err}"
    for number, block in enumerate(python):
        script = tmp_path / f"example{number}.py"
        script.write_text(block.replace('"../shared/data"', repr(short_training)), encoding="utf-8")
        runpy.run_path(str(script), run_name="__main__")


def test_the_readme_shows_setup_training_and_tests_and_stays_short():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert "pip install -e" in text and "infogan train" in text and "python -m pytest" in text


@pytest.mark.parametrize("page", ["README.md", *sorted(p.relative_to(REPO).as_posix()
                                                        for p in (REPO / "docs").glob("*.md"))])  # fmt: skip
def test_every_local_link_of_a_page_points_to_a_file(page):
    text = (REPO / page).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (REPO / page).parent / target.split("#")[0]
        assert path.exists(), f"{page} links to {target}, which does not exist"


def test_the_architecture_page_is_the_tree():
    generated = runpy.run_path(str(REPO / "docs" / "architecture.py"))["render"]()
    assert (REPO / "docs" / "architecture.md").read_text(encoding="utf-8") == generated, (
        "docs/architecture.md is out of date: run python docs/architecture.py"
    )


DOC_PAGES = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(?:[A-Z_]+=\S+\s+)*(?:torchrun\s.*?-m\s+|python\s+-m\s+)?infogan\s+(?P<args>.*)$")


def _every_command(page: str) -> list[str]:
    """Every `infogan ...` command line of a page, in code blocks or indented (continuations joined)."""
    text = (REPO / page).read_text(encoding="utf-8").replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        for part in line.strip().split("&&"):
            match = COMMAND.match(part.strip())
            if match:
                found.append(match["args"])
    return found


@pytest.mark.parametrize("page", DOC_PAGES)
def test_every_command_a_page_shows_is_one_the_cli_takes(page, capsys):
    """Commands that are not run (training for hours, servers, torchrun) still parse: a renamed
    flag or command fails here instead of in a reader's shell."""
    parser = build_parser()
    for args in _every_command(page):
        try:
            parser.parse_args(shlex.split(args, comments=True))
        except SystemExit:
            pytest.fail(f"{page}: `infogan {args}` is not a command the CLI takes:\n{capsys.readouterr().err}")


def test_every_test_the_reliability_page_names_exists():
    """docs/reliability.md is the list of faults tried; each test it names must be in the suite."""
    text = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    sources = [path.read_text(encoding="utf-8") for path in (REPO / "tests").rglob("test_*.py")]
    defined = {name for source in sources for name in re.findall(r"^(?:async )?def (test_\w+)", source, flags=re.M)}
    named = set(re.findall(r"`(?:[\w/]+\.py::)?(test_\w+)\b(?!\.py)", text))
    assert named, "the reliability page names no tests"
    assert not named - defined, f"docs/reliability.md names tests that do not exist: {sorted(named - defined)}"
