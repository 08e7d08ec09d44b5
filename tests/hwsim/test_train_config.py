"""`train(model, data, precision, config, **hyperparameters)`: a TrainConfig, keywords or both;
the epoch tally."""
from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from hwsim import CosineLR, Precision, TrainConfig, train
from hwsim._train import HYPERPARAMETERS, _EpochTally

from .test_train import DATA, Q8, assert_same, model


def test_config_trains_like_the_same_keywords(tmp_path):
    cfg = TrainConfig(epochs=2, batch=32, optimizer="sgd", lr=0.02, seed=5, schedule="cosine")
    by_keywords = model()
    ref = train(by_keywords, DATA, Q8, epochs=2, batch=32, optimizer="sgd", lr=0.02, seed=5,
                schedule="cosine", progress=False)
    by_config = model()
    r = train(by_config, DATA, Q8, cfg, out=tmp_path, progress=False)
    assert_same(by_keywords.state_dict(), by_config.state_dict())
    assert r["train_loss"] == ref["train_loss"] and r["config"] == ref["config"] == asdict(cfg)
    assert json.loads((tmp_path / "run.json").read_text())["config"] == asdict(cfg)


def test_keywords_override_the_config():
    cfg = TrainConfig(epochs=5, batch=32, lr=0.5, seed=5)
    r = train(model(), DATA, Precision(), cfg, epochs=1, lr=0.01, progress=False)
    assert r["config"] == asdict(TrainConfig(epochs=1, batch=32, lr=0.01, seed=5))
    assert len(r["train_loss"]) == 1 and r["lr"] == [0.01]
    assert cfg.epochs == 5  # the caller's config is not changed


def test_unknown_keyword_names_it_and_the_allowed_names():
    with pytest.raises(TypeError) as info:
        train(model(), DATA, Precision(), epochs=1, batch=32, epoch=3)
    msg = str(info.value)
    assert "\n" not in msg and "'epoch'" in msg
    for name in HYPERPARAMETERS + ("out", "resume", "progress", "scheme", "health_every", "xp"):
        assert name in msg


def test_missing_or_bad_config_is_a_type_error():
    with pytest.raises(TypeError, match="'batch'.*config=TrainConfig"):
        train(model(), DATA, Precision(), epochs=1)
    with pytest.raises(TypeError, match="config must be a hwsim.TrainConfig"):
        train(model(), DATA, Precision(), {"epochs": 1, "batch": 32})
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        train(model(), DATA, Precision(), TrainConfig(epochs=1, batch=32), epochs=0)


def test_schedule_object_keyword_is_recorded_by_its_spec():
    sched = CosineLR(None, 0.001)
    r = train(model(), DATA, Precision(), TrainConfig(epochs=2, batch=32, lr=0.01), schedule=sched,
              progress=False)
    assert r["config"]["schedule"] == "cosine:0.001"
    assert r["lr"] == [sched.lr(0.01, epoch, 2) for epoch in range(2)] and r["lr"][1] < 0.009


def test_epoch_tally_is_the_checkpoint_partial():
    tally = _EpochTally()
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    tally.add(0.5, logits, np.array([0, 1, 1]), regression=False)
    tally.add(1.0, logits[:1], np.array([1]), regression=True)
    assert (tally.loss, tally.correct, tally.seen) == (2.5, 2, 4)
    assert tally.mean_loss == 2.5 / 4 and tally.accuracy == 0.5
    part = tally.to_checkpoint({"dense0": {}})
    assert list(part) == ["loss", "correct", "seen", "seconds", "stats"]
    assert _EpochTally.from_checkpoint(json.loads(json.dumps(part))) == tally
    assert _EpochTally().to_checkpoint() == {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
