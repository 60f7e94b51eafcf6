"""TensorBoard events of one training run: per-epoch scalars and an HParams session.

The HParams summary is written at the start (the parameters are known then) and the ``best/valid/*``
scalars after every epoch, so a run that is stopped early (by ASHA, say) still shows its best metrics
in the HParams tab. Each epoch's ~50 scalars go out as one event, flushed at once: whoever runs the
loop may end the process at the next step, and nothing may wait in a buffer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mgtune.store.metrics import METRICS
from mgtune.training.loop import EpochReport

__all__ = ["RunWriter"]


class RunWriter:
    """The event file of one run in ``logdir``.

    ``params``: the run's hyperparameters for the HParams tab; ``choices``: the discrete ones' values;
    ``resumed_after``: the last epoch of the checkpoint a resumed run continues from (the epochs after
    it are replayed, so the first run's copies of them are hidden).
    """

    def __init__(self, logdir: Path, params: Mapping[str, Any], choices: Mapping[str, Sequence[Any]],
                 topk: Sequence[int], resumed_after: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.w = SummaryWriter(str(logdir), purge_step=None if resumed_after is None else resumed_after + 1)
        metrics = {f"best/valid/{m}@{k}": 0.0 for m in METRICS for k in topk}
        exp, ssi, self.sei = hparams(dict(params), metrics, {k: list(v) for k, v in choices.items()})
        self._write(exp, ssi)

    def _write(self, *summaries: Any, step: int | None = None) -> None:
        file_writer = self.w.file_writer
        assert file_writer is not None  # SummaryWriter opens it in __init__
        for summary in summaries:
            file_writer.add_summary(summary, step)
        self.w.flush()

    def epoch(self, rep: EpochReport) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        scalars = {"train/loss": rep.train_loss, "lr": rep.lr, **{f"valid/{k}": v for k, v in rep.valid.items()},
                   **{f"test/{k}": v for k, v in rep.test.items()},
                   **{f"best/valid/{k}": v for k, v in rep.best_valid.items()}}
        # one event holding the epoch's scalars (what add_scalar writes, one event each, at 10x the cost)
        self._write(Summary(value=[Summary.Value(tag=t, simple_value=float(v)) for t, v in scalars.items()]),
                    step=rep.epoch)

    def session_end(self) -> None:
        self._write(self.sei)

    def close(self) -> None:
        self.w.close()
