"""``hwsim cost`` on optical4f when no op of the model runs optically: the row is its host's cost, and the
table says so (it used to print an unmarked optical4f row identical to xeon-8380's)."""
from __future__ import annotations

import json

from hwsim.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _row(out: str, device: str) -> list[str]:
    return next(line.split("|")[2:-1] for line in out.splitlines() if line.startswith(f"| {device}"))


def test_mlp_on_optical4f_is_marked_as_host_only(capsys):
    rc, out, _ = _run(capsys, "cost", "--model", "mlp:784-256-10", "--device", "optical4f",
                      "--device", "xeon-8380")
    assert rc == 0
    assert "| optical4f (all on host xeon-8380) |" in out
    assert _row(out, "optical4f") == _row(out, "xeon-8380")   # the same numbers, now labelled as the host's
    assert "optical4f: no op of this model runs optically" in out and "host xeon-8380" in out


def test_mlp_json_counts_the_optical_ops(capsys):
    rc, out, _ = _run(capsys, "cost", "--model", "mlp:784-256-10", "--device", "optical4f",
                      "--device", "xeon-8380", "--json")
    devices = json.loads(out)["devices"]
    assert rc == 0 and devices["optical4f"]["optical_ops"] == 0
    assert devices["optical4f"]["host"] == "xeon-8380"
    assert devices["optical4f"]["latency_s"] == devices["xeon-8380"]["latency_s"]
    assert "optical_ops" not in devices["xeon-8380"]


def test_convolutions_on_optical4f_are_not_marked(capsys):
    rc, out, _ = _run(capsys, "cost", "--model", "cnn:lenet5", "--device", "optical4f", "--json")
    assert rc == 0 and json.loads(out)["devices"]["optical4f"]["optical_ops"] == 2   # its two convolutions
    rc, out, _ = _run(capsys, "cost", "--model", "cnn:lenet5", "--device", "optical4f")
    assert "| optical4f |" in out and "all on host" not in out and "runs optically" not in out
