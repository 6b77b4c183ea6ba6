"""The benchmark scripts' own measuring helpers (the scripts themselves run for minutes)."""

import multiprocessing
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import throughput  # noqa: E402


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_peak_memory_of_a_spawned_child_is_its_own_not_its_parents():
    ballast = bytearray(1024 * 2**20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page: 1 GB resident here
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        child_peak = pool.apply(throughput.peak_rss_bytes)
    assert throughput.peak_rss_bytes() > 1024 * 2**20
    assert child_peak < 700 * 2**20  # a fresh interpreter with torch imported, without the ballast
    del ballast


def test_medians_pick_the_middle_round_of_each_variant():
    rows = [
        {"preset": "mnist", "batch_size": 128, "variant": v, "images_per_s": ips, "round": r}
        for r, (v, ips) in enumerate([("a", 10.0), ("b", 5.0), ("a", 30.0), ("b", 7.0), ("a", 20.0), ("b", 6.0)])
    ]
    medians = {row["variant"]: row["images_per_s"] for row in throughput._medians(rows)}
    assert medians == {"a": 20.0, "b": 6.0}
