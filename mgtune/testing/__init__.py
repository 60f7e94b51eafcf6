"""Checks for models, shared by the test suite and by you: `check_model` runs the registry's contract.

    from mgtune.testing import check_model
    check_model(MyModel)      # AssertionError or ConfigError saying what is wrong; None when it holds
"""

from mgtune.testing.contract import (
    check_loss_and_score,
    check_modalities,
    check_model,
    check_training,
    contract_dataset,
)

__all__ = ["check_model", "check_loss_and_score", "check_modalities", "check_training", "contract_dataset"]
