"""Atomic writes and their clean-up: the temporary files are of a naming no user would choose, and
only those, in folders the project writes, are ever removed; a full disk is one clear message."""

import errno

import pytest

from helpers import tiny_config
from infogan.cli import main
from infogan.errors import InfoGANError
from infogan.fileio import TEMP_PREFIX, atomic_write, remove_leftovers, write_output
from infogan.training.loop import Trainer

USERS_OWN = (".tmp-notes.txt", ".video.mp4.part", ".tmprc", ".thesis.tex.part", ".tmpA1b2C3")


def _users_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in USERS_OWN:
        (folder / name).write_text(name)


def test_a_temporary_file_is_named_so_that_no_user_would_choose_it(tmp_path):
    with atomic_write(tmp_path / "out.txt") as tmp:
        assert tmp.name.startswith(TEMP_PREFIX + "out.txt.") and tmp.name.endswith(".part")
        assert tmp.parent == tmp_path
        tmp.write_text("done")
    assert (tmp_path / "out.txt").read_text() == "done" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_only_the_projects_own_leftovers_are_removed(tmp_path):
    _users_files(tmp_path)
    ours = [tmp_path / f"{TEMP_PREFIX}config.yaml.k2j3h4.part", tmp_path / f"{TEMP_PREFIX}report.json.a1b2c3.part"]
    for path in ours:
        path.write_bytes(b"\0")
    remove_leftovers(tmp_path, names=["config.yaml"])  # only that file's leftovers
    assert not ours[0].exists() and ours[1].exists()
    remove_leftovers(tmp_path)  # every leftover of ours
    assert not ours[1].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(USERS_OWN)


def test_export_keeps_the_users_own_files_in_its_folder(train_slice, tmp_path):
    Trainer(tiny_config(), train_slice, run_dir=tmp_path / "run").fit()
    out = tmp_path / "mydir"
    _users_files(out)
    leftover = out / f"{TEMP_PREFIX}model.safetensors.x1y2z3.part"  # a killed export's
    leftover.write_bytes(b"\0" * 100)
    assert main(["export", str(tmp_path / "run"), "--out", str(out), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*USERS_OWN, "config.json", "model.safetensors"])
    assert all((out / name).read_text() == name for name in USERS_OWN)


def test_a_full_disk_is_said_the_same_way_for_a_file_the_user_asked_for(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("infogan.fileio.os.fsync", full_disk)
    with pytest.raises(InfoGANError, match=r"the disk is full.*grid\.png.*free space") as info:
        write_output(tmp_path / "grid.png", b"x" * 5000)
    assert "5.0 kB" in str(info.value) or "5 kB" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
