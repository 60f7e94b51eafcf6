"""``mgtune recommend``: each user's top-k items from a trained model, in the dataset's own ids.

The weights are a checkpoint (``checkpoint.pt`` of ``mgtune train``, ``weights.pt`` of a study trial or
a confirmation run) or a study's best trial, chosen by the report's rule (`mgtune.store.select_best`:
validation only). Users are scored, their training items masked and the items ranked by the
evaluator's own code (`Evaluator.ranked`), in batches on the model's device, so the ranking is the one
the metrics were computed on: a user's validation and test items may be recommended (they are what
the evaluation counts as hits), a training item never is. A user with fewer than k items left gets
fewer rows.

Ids are the original ones when the dataset has the maps ``data prepare`` writes (and MMRec's Amazon
sets have): ``u_id_mapping.csv`` / ``i_id_mapping.csv``, tab-separated, the original id then the
internal one. Without them they are the internal integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mgtune.checks import check_int, check_writable_dir
from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import atomic_open
from mgtune.models import load_model_module
from mgtune.models.model_files import model_module_option
from mgtune.options import option
from mgtune.store import RESULTS_FILE, WEIGHTS_FILE, StudyRecord, read_results, select_best
from mgtune.training.checkpoint_eval import load_trained
from mgtune.training.evaluate import Evaluator

__all__ = ["RecommendSettings", "recommend", "study_weights", "read_id_map", "ID_MAP_FILES", "FORMATS"]

ID_MAP_FILES = {"user": "u_id_mapping.csv", "item": "i_id_mapping.csv"}
"""The id maps of a dataset folder (the names `mgtune.data.prepare` writes)."""
FORMATS = (".csv", ".parquet")
COLUMNS = ("user", "rank", "item", "score")
_MAX_K = 100_000


@dataclass(frozen=True)
class RecommendSettings:
    """``mgtune recommend``."""

    out: str = option(metavar="FILE", help="where the recommendations go, .csv or .parquet (by the suffix); "
                      "columns user, rank, item, score")
    checkpoint: str | None = option(None, metavar="FILE", default_text="none", help="the weights: checkpoint.pt "
                                    "of mgtune train, or weights.pt of a study trial or a confirmation run")
    study: str | None = option(None, metavar="DIR", default_text="none", help="a study folder: its best trial "
                               "(the report's choice, by validation)")
    k: int = option(20, help="items per user")
    users: str | None = option(None, metavar="FILE", default_text="every user", help="the users, one original id "
                               "per line")
    dataset: str | None = option(None, help="dataset whose users to recommend for", default_text="the weights'")
    data_dir: str | None = option(None, help="the folder of dataset folders", default_text="the weights'")
    device: str = option("auto", help="auto, cpu or cuda")
    model_module: str | None = model_module_option()

    def __post_init__(self) -> None:
        if (self.checkpoint is None) == (self.study is None):
            raise ConfigError("recommend needs exactly one of --checkpoint FILE or --study DIR")
        check_int("--k", self.k, low=1, high=_MAX_K)
        if Path(self.out).suffix.lower() not in FORMATS:
            raise ConfigError(f"--out {self.out}: the suffix says the format: use .csv or .parquet")
        check_writable_dir("--out", Path(self.out).expanduser().parent)
        if self.users is not None and not Path(self.users).is_file():
            raise ConfigError(f"--users {self.users}: file not found")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        load_model_module(self.model_module)


def study_weights(study: str | Path) -> Path:
    """The weights file of the study's best trial (the report's choice); a one-line error when it kept none."""
    folder = Path(study).expanduser()
    record = StudyRecord.read(folder)
    load_model_module(record.extra.get("model_module"))  # a model of one's own, as the study ran it
    results = folder / RESULTS_FILE
    if not results.is_file():
        raise DataFormatError(f"{results}: missing; the study has not finished (continue it with mgtune run --resume)")
    key = f"valid_{record.metric}"
    frame = read_results(results, [key])
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    best = select_best(rows, record.metric, budget_ended=record.ended_by in ("epochs", "time"))
    if best is None:
        raise DataFormatError(f"{results}: no trial to recommend with (none completed)")
    weights = folder / str(best["trial_dir"]) / WEIGHTS_FILE
    if not weights.is_file():
        raise ConfigError(f"{weights}: the best trial ({best['trial_id']}, {best['status']}) kept no weights (a trial "
                          "keeps them when it ends by itself; one a budget cut short, or of a study older than "
                          f"this, does not); run mgtune confirm {folder}, whose runs keep weights.pt, and pass "
                          "one with --checkpoint")
    return weights


def read_id_map(folder: Path, kind: str, n: int) -> np.ndarray | None:
    """Original id (text) of each internal id 0..n-1, from the dataset's map file; None when it has none."""
    path = folder / ID_MAP_FILES[kind]
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataFormatError(f"{path}: not a tab-separated id map ({type(exc).__name__})") from None
    if frame.shape[1] != 2:
        raise DataFormatError(f"{path}: expected two columns (original id, internal id), got {frame.shape[1]}")
    internal = pd.to_numeric(frame.iloc[:, 1], errors="coerce")
    if internal.isna().any() or len(frame) != n or set(internal.astype(np.int64)) != set(range(n)):
        raise DataFormatError(f"{path}: its second column must hold each internal {kind} id 0..{n - 1} once")
    out = np.empty(n, dtype=object)
    out[internal.to_numpy(np.int64)] = frame.iloc[:, 0].to_numpy()
    return out


def _users(s: RecommendSettings, n_users: int, ids: np.ndarray | None) -> np.ndarray:
    """The internal ids of the users to recommend for, in the order given (every user by default)."""
    if s.users is None:
        return np.arange(n_users)
    lines = [ln.strip() for ln in Path(s.users).read_text(encoding="utf-8", errors="replace").splitlines()]
    wanted = list(dict.fromkeys(ln for ln in lines if ln))
    if not wanted:
        raise DataFormatError(f"{s.users}: no user ids (one per line)")
    known = pd.Index(ids if ids is not None else np.arange(n_users).astype(str))
    found = known.get_indexer(wanted)
    if (found < 0).any():
        missing = wanted[int(np.flatnonzero(found < 0)[0])]
        kind = "the original ones" if ids is not None else f"internal, 0..{n_users - 1} (the dataset has no id map)"
        raise DataFormatError(f"{s.users}: user {missing!r} is not in the dataset ({int((found < 0).sum())} of "
                              f"{len(wanted)} unknown; ids are {kind})")
    return found.astype(np.int64)


def recommend(s: RecommendSettings) -> dict[str, Any]:
    """Write the top-``k`` items of each user to ``s.out``; what was written (what the command prints)."""
    weights = Path(s.checkpoint) if s.checkpoint is not None else study_weights(str(s.study))
    trained = load_trained(weights, s.dataset, s.data_dir, s.device)
    data, cfg = trained.data, trained.config
    user_ids, item_ids = (read_id_map(data.path, kind, n) for kind, n in (("user", data.n_users),
                                                                           ("item", data.n_items)))
    users = _users(s, data.n_users, user_ids)
    evaluator = Evaluator(data, trained.device, cfg.topk, cfg.eval_batch_size)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for batch, items, scores in evaluator.ranked(trained.model, torch.as_tensor(users, device=trained.device), s.k):
        keep = torch.isfinite(scores)  # a masked (training) item scores -inf: never recommended
        rank = torch.arange(1, items.shape[1] + 1, device=items.device).expand_as(items)
        parts.append(tuple(t.cpu().numpy() for t in (batch.unsqueeze(1).expand_as(items)[keep], rank[keep],
                                                      items[keep], scores[keep])))  # type: ignore[arg-type]
    u, r, i, v = (np.concatenate([p[j] for p in parts]) if parts else np.empty(0) for j in range(4))
    frame = pd.DataFrame({"user": user_ids[u] if user_ids is not None else u, "rank": r.astype(np.int64),
                          "item": item_ids[i] if item_ids is not None else i, "score": v.astype(np.float32)},
                         columns=list(COLUMNS))
    out = Path(s.out).expanduser()
    with atomic_open(out, "wb") as fh:
        if out.suffix.lower() == ".parquet":
            frame.to_parquet(fh, index=False)
        else:
            frame.to_csv(fh, index=False)
    return {"model": cfg.model, "dataset": cfg.dataset, "weights": str(weights), "users": len(users), "k": s.k,
            "rows": len(frame), "ids": "original" if user_ids is not None and item_ids is not None else "internal",
            "out": str(out)}
