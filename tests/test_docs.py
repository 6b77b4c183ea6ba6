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
from infogan.cli import main
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
