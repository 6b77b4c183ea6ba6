"""Write docs/architecture.md from the source tree: every package and module of src/infogan with
the first paragraph of its docstring. tests/test_docs.py fails when the page and the tree differ;
run `python docs/architecture.py` after adding, moving or redescribing a module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "infogan"
PAGE = Path(__file__).with_name("architecture.md")

INTRO = """# Architecture

A library first, with thin front ends. Imports run one way: the front ends (`cli/`, `explore/`)
call the operations (`training/`, `evaluation/`, `viz/`), which use the trained model
(`model.py`) and the method (`core/`), which stand on the shared ground (`config.py`,
`runtime.py`, `checkpoint.py`, `shipped/`, `errors.py`, `fileio.py`). Nothing inside imports
the package face (`infogan/__init__.py`).

This page is generated from the tree by `python docs/architecture.py` (the first paragraph of
each module's docstring); a test fails when it is out of date.
"""


def summary(path: Path) -> str:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(docstring.split("\n\n")[0].split())


def render() -> str:
    lines = [INTRO]
    folders = sorted({p.parent for p in PACKAGE.rglob("*.py")}, key=lambda p: p.relative_to(PACKAGE).parts)
    for folder in folders:
        name = folder.relative_to(PACKAGE.parent).as_posix()
        lines.append(f"\n## `{name}/`\n")
        init = folder / "__init__.py"
        if init.exists() and summary(init):
            lines.append(f"{summary(init)}\n")
        for module in sorted(folder.glob("*.py")):
            if module.name != "__init__.py":
                lines.append(f"- `{module.name}`: {summary(module)}")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {PAGE}")
