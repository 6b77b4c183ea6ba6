"""Trained models shipped inside the package, opened by name: `infogan.load("mnist")`,
`infogan explore mnist`. Each is a folder of this package holding an export (model.safetensors,
config.json), its evaluation.json, card.json (the facts, machine readable) and README.md.

`resolve` turns what a user gives for a model into a path, for every command and function: a
path that exists wins; else a shipped model's name gives its folder, once the SHA-256 of its
weights matches its card. ROOT is where the shipped models are looked for (tests point it
elsewhere).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from infogan.errors import InfoGANError

ROOT = Path(__file__).resolve().parent
CARD = "card.json"
WEIGHTS = "model.safetensors"
REINSTALL = "reinstall infogan (pip install --force-reinstall infogan)"


def shipped_names(root: str | Path | None = None) -> list[str]:
    """The names of the shipped models, sorted: the folders of `root` (default ROOT) with a card."""
    root = Path(root or ROOT)
    return sorted(folder.name for folder in root.iterdir() if (folder / CARD).is_file()) if root.is_dir() else []


def shipped_models(root: str | Path | None = None) -> dict[str, str]:
    """Each shipped model's name and one-line title, as `infogan models` lists them."""
    return {name: str(model_card(name, root).get("title", "")) for name in shipped_names(root)}


def model_card(name: str, root: str | Path | None = None) -> dict:
    """The card of the shipped model `name` (card.json, parsed): what it is, how it was trained,
    how it scores and the SHA-256 of its weights. An unknown name is an InfoGANError listing
    the shipped names."""
    if name not in shipped_names(root):
        raise InfoGANError(f"{name!r} is not a shipped model; {_listing(root)}")
    path = Path(root or ROOT) / name / CARD
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InfoGANError(f"the shipped model {name}'s card {path} is unreadable ({exc}); {REINSTALL}") from None
    if not isinstance(card, dict) or not isinstance(card.get("sha256"), str):
        raise InfoGANError(f"the card of the shipped model {name} ({path}) is damaged (no sha256); {REINSTALL}")
    return card


def resolve(model: str | Path, root: str | Path | None = None) -> Path:
    """The path of a model given as a path or as a shipped model's name.

    A path that exists is returned as it is (it wins over a shipped model of the same name).
    Else a shipped model's name gives its folder, after the SHA-256 of its weights is checked
    against its card (a mismatch: an InfoGANError saying to reinstall). Anything else is an
    InfoGANError saying the path does not exist, with the shipped names.
    """
    path = Path(model)
    if path.exists():
        return path
    if str(model) not in shipped_names(root):
        raise InfoGANError(
            f"{model} does not exist; give a run directory, an export folder, a .safetensors file or the name "
            f"of a shipped model ({_listing(root)})"
        )
    return shipped_folder(str(model), root)


def shipped_folder(name: str, root: str | Path | None = None) -> Path:
    """The folder of the shipped model `name`, once the SHA-256 of its weights matches its card."""
    expected = model_card(name, root)["sha256"]
    folder = Path(root or ROOT) / name
    found = sha256_of(folder / WEIGHTS)
    if found != expected:
        raise InfoGANError(
            f"the shipped model {name} is damaged: {folder / WEIGHTS} has SHA-256 {found}, its card says {expected}; "
            f"{REINSTALL}"
        )
    return folder


def is_shipped(path: str | Path, root: str | Path | None = None) -> bool:
    """Whether `path` (as `resolve` returns it) is a shipped model's folder: part of the installed
    package, which commands read but never write into."""
    path = Path(path)
    return (path / CARD).is_file() and path.resolve().parent == Path(root or ROOT).resolve()


def shadowing_note(path: str | Path, root: str | Path | None = None) -> str:
    """A note for a path that exists here and is also a shipped model's name (it wins, so the
    shipped model is not what was read), else ""."""
    name = str(path)
    if name not in shipped_names(root) or is_shipped(path, root):
        return ""
    return (
        f" (note: {name} exists here, so it was read instead of the shipped model {name}; "
        f"give that one by its folder, {Path(root or ROOT) / name}, or run from another folder)"
    )


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex; a file that cannot be read is a damaged install."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InfoGANError(f"cannot read {path} ({exc.strerror or exc}); {REINSTALL}") from None
    return digest.hexdigest()


def _listing(root: str | Path | None) -> str:
    names = shipped_names(root)
    return f"shipped: {', '.join(names)}" if names else "this infogan ships no models"
