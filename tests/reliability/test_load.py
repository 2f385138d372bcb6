"""Several processes on one home with the owner SIGKILLed while they call (bench/load.py,
bounded): every acknowledged write is stored exactly once and no call fails with anything
but a tiermem error."""

from __future__ import annotations

from pathlib import Path

from bench.load import run


def test_mixed_calls_from_three_processes_survive_killed_owners(tmp_path: Path) -> None:
    result = run(processes=3, seconds=14, kill_every=4, home=tmp_path)
    assert result["kills"] >= 2
    assert result["acknowledged_writes"] > 100
    assert (result["lost"], result["duplicated"], result["raw_errors"]) == (0, 0, 0), result["examples"]
    assert set(result["tiermem_errors"]) <= {"UnknownUser"}, result["tiermem_errors"]  # a read before a first write
