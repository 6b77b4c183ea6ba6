import json

import pytest

from helpers import tiny_config
from infogan.training.loop import Trainer


def test_tensorboard_logs_the_metrics_when_installed(train_slice, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(tiny_config(**{"logging.tensorboard": True}), train_slice, run_dir=tmp_path).fit()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"d_loss", "g_loss", "mi_c1", "info_loss_c2", "images_per_s"} <= tags
    assert [e.step for e in events.Scalars("mi_c1")] == [2, 4]


def test_metrics_log_and_progress_images(train_slice, tmp_path, capsys):
    Trainer(tiny_config(), train_slice, run_dir=tmp_path, progress=False).fit()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    assert all(line["images_per_s"] > 0 and -1 < line["mi_c1"] <= 2.31 for line in lines)
    assert "step 4/4" in capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert names[:2] == ["samples-0000002.png", "samples-0000004.png"]
