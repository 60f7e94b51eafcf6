"""Per-model training defaults: the reference's model YAML over its overall.yaml, and the user over both."""

from mgtune.training import TrainConfig


def test_model_defaults_apply_and_the_user_wins() -> None:
    lattice = TrainConfig.for_model("lattice", "d")
    assert (lattice.lr_decay, lattice.lr_decay_every) == (0.96, 50)  # MMRec: learning_rate_scheduler [0.96, 50]
    assert TrainConfig.for_model("mgcn", "d").lr_decay == 0.96
    assert TrainConfig.for_model("freedom", "d").lr_decay == 1.0  # no override: overall.yaml's [1.0, 50]
    assert TrainConfig.for_model("lattice", "d", lr_decay=0.5).lr_decay == 0.5
    default_lr = TrainConfig("m", "d").learning_rate
    assert TrainConfig.for_model("lattice", "d", learning_rate=None).learning_rate == default_lr
