"""Load and validate a dataset in MMRec's on-disk format.

A dataset is a folder ``<data_dir>/<name>/`` holding

- ``<name>.inter``: tab-separated, a header with at least ``userID``, ``itemID`` and ``x_label``
  (0 = train, 1 = valid, 2 = test); other columns are ignored;
- ``image_feat.npy`` / ``text_feat.npy`` (optional): float32 ``[n_items, d]``, row i = item i.

As in MMRec, ``n_users``/``n_items`` are the largest id + 1 over all splits, and users of the
valid/test splits who have no training rows are dropped (they could not be scored fairly).
Every problem found is a `DataFormatError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mgtune.checks import check_name, check_regular_file, check_writable_dir, first_line
from mgtune.errors import DataFormatError
from mgtune.files import check_replaceable

__all__ = ["Split", "Dataset", "load_dataset", "dataset_dir", "target_folder", "file_digest", "AMAZON_DATASETS"]

REQUIRED_COLUMNS = ("userID", "itemID", "x_label")
FEATURE_FILES = {"image": "image_feat.npy", "text": "text_feat.npy"}
AMAZON_DATASETS = ("baby", "sports", "clothing", "elec")
_MAX_ID = 2**31 - 1  # ids index torch tensors; larger ones are not ids of a real dataset
_ID_SLACK_FACTOR, _ID_SLACK = 10, 10_000  # ids may leave some gaps, not billions
_HOW_TO_GET = (
    "download the preprocessed Amazon data from the MMRec/Mirror-Gradient Google Drive folder "
    "(https://drive.google.com/drive/folders/13cBy1EA_saTUuXxVllKgtfci2A09jyaG) or build it with "
    "the seed's preprocessing notebooks, and put it at {path} ({name}.inter, image_feat.npy, "
    "text_feat.npy)"
)


@dataclass(frozen=True)
class Split:
    """One split's interactions as parallel id arrays (int64)."""

    users: np.ndarray
    items: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded, validated dataset. Arrays live on the CPU; the training layer moves them."""

    name: str
    path: Path
    n_users: int
    n_items: int
    train: Split
    valid: Split
    test: Split
    image_feat: np.ndarray | None = None
    text_feat: np.ndarray | None = None
    fingerprint: str = field(default="")

    def features(self, modality: str) -> np.ndarray:
        """The feature matrix of ``modality`` ("image" or "text"), or a clear error if absent."""
        feat = self.image_feat if modality == "image" else self.text_feat
        if feat is None:
            raise DataFormatError(
                f"{self.path / FEATURE_FILES[modality]}: missing, and this model needs {modality} features"
            )
        return feat

    def modalities(self) -> dict[str, np.ndarray]:
        """The feature matrices present, keyed "image"/"text", in that order."""
        out = {}
        if self.image_feat is not None:
            out["image"] = self.image_feat
        if self.text_feat is not None:
            out["text"] = self.text_feat
        return out


def dataset_dir(data_dir: str | Path, name: str) -> Path:
    """The absolute folder of dataset ``name`` (trials run in another working directory).

    Every command that names a dataset comes here, so a name that is a path (``../x``, ``/abs``,
    ``a/b``), which would read or write outside ``data_dir``, is refused in one place. ``data_dir`` is
    resolved, the name is not: a dataset folder that is a symbolic link is read through the link,
    and never replaced (`target_folder`).
    """
    check_name("dataset name", name)
    return Path(data_dir).expanduser().resolve() / name  # the name itself is not resolved: it may be a link


def load_dataset(data_dir: str | Path, name: str) -> Dataset:
    """Read and validate ``<data_dir>/<name>``; raise `DataFormatError` on any problem."""
    path = dataset_dir(data_dir, name)
    if not path.is_dir():
        hint = _HOW_TO_GET.format(path=path, name=name) if name in AMAZON_DATASETS else (
            "create it with `mgtune data synth --name NAME` or pass --data-dir"
        )
        raise DataFormatError(f"{path}: dataset folder not found; {hint}")
    inter_file = check_regular_file(path / f"{name}.inter", "interaction file")
    users, items, labels = _read_inter(inter_file)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    for what, ids, n in (("userID", users, n_users), ("itemID", items, n_items)):
        _check_dense(inter_file, what, ids, n)

    splits = []
    train_users = None
    for label, split_name in enumerate(("train", "valid", "test")):
        mask = labels == label
        u, i = users[mask], items[mask]
        if train_users is not None:  # drop cold-start users, as MMRec does
            keep = train_users[u]
            u, i = u[keep], i[keep]
        if len(u) == 0:
            raise DataFormatError(f"{inter_file}: the {split_name} split (x_label={label}) is empty")
        if train_users is None:
            train_users = np.zeros(n_users, dtype=bool)
            train_users[u] = True
        splits.append(Split(u, i))

    feats = {m: _read_features(path / f, n_items) for m, f in FEATURE_FILES.items()}
    return Dataset(
        name=name,
        path=path,
        n_users=n_users,
        n_items=n_items,
        train=splits[0],
        valid=splits[1],
        test=splits[2],
        image_feat=feats["image"],
        text_feat=feats["text"],
        fingerprint=fingerprint(path, name),
    )


def _check_dense(inter_file: Path, what: str, ids: np.ndarray, n: int) -> None:
    """Ids are row numbers of embedding tables, so ids far beyond the distinct count would allocate for nothing.

    MMRec's data are reindexed to ``0..n-1``; a few gaps are tolerated, a huge id (a raw ASIN hash,
    a typo) is refused here, with the sizes named, before anything is allocated.
    """
    distinct = len(np.unique(ids))
    if n > _ID_SLACK_FACTOR * distinct + _ID_SLACK:
        kind = "users" if what == "userID" else "items"
        raise DataFormatError(
            f"{inter_file}: {what} values imply {n} {kind} (largest id {n - 1}), but only {distinct} distinct "
            f"{kind} appear; ids must be 0..n-1 (reindex them, as MMRec's preprocessing does)"
        )


def fingerprint(path: Path, name: str) -> str:
    """A hash of the dataset's files' contents: caches keyed by it are never stale."""
    h = hashlib.blake2b(digest_size=16)
    for fname in (f"{name}.inter", *FEATURE_FILES.values()):
        f = path / fname
        h.update(fname.encode())
        if f.is_file():
            with f.open("rb") as fh:
                while chunk := fh.read(1 << 24):
                    h.update(chunk)
    return h.hexdigest()


def _read_inter(inter_file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd  # load-time only; never in a batch loop

    try:  # the header as written: pandas would read a repeated name as ``userID.1`` and take the first
        header = [str(c) for c in pd.read_csv(inter_file, sep="\t", header=None, nrows=1, dtype=str).iloc[0]]
    except Exception as exc:  # empty file, binary junk, ...
        raise DataFormatError(f"{inter_file}: cannot read as tab-separated text ({first_line(exc)})") from None
    twice = [c for c in REQUIRED_COLUMNS if header.count(c) > 1]
    if twice:
        raise DataFormatError(f"{inter_file}: the header names column {twice[0]} twice")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataFormatError(
            f"{inter_file}: missing column(s) {', '.join(missing)} (header has {', '.join(map(str, header))})"
        )
    try:
        df = pd.read_csv(inter_file, sep="\t", usecols=list(REQUIRED_COLUMNS), dtype=str)
    except Exception as exc:
        raise DataFormatError(f"{inter_file}: cannot parse ({first_line(exc)})") from None
    if len(df) == 0:
        raise DataFormatError(f"{inter_file}: no interactions")
    cols = []
    for col in REQUIRED_COLUMNS:
        values = pd.to_numeric(df[col].str.strip(), errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(
                f"{inter_file}: column {col} must hold integers, got {df[col].iloc[row]!r} on data row {row + 1}"
            )
        too_big = values.abs() > _MAX_ID
        if too_big.any():
            row = int(np.flatnonzero(too_big.to_numpy())[0])
            raise DataFormatError(
                f"{inter_file}: column {col} has id {df[col].iloc[row].strip()} on data row {row + 1}, "
                f"above the largest supported id {_MAX_ID}"
            )
        arr = values.to_numpy(dtype=np.int64)
        if (arr < 0).any():
            row = int(np.flatnonzero(arr < 0)[0])
            raise DataFormatError(f"{inter_file}: column {col} has negative id {arr[row]} on data row {row + 1}")
        cols.append(arr)
    labels = cols[2]
    bad_label = ~np.isin(labels, (0, 1, 2))
    if bad_label.any():
        row = int(np.flatnonzero(bad_label)[0])
        raise DataFormatError(
            f"{inter_file}: x_label must be 0, 1 or 2 (train/valid/test), got {labels[row]} on data row {row + 1}"
        )
    return cols[0], cols[1], labels


def _read_features(feat_file: Path, n_items: int) -> np.ndarray | None:
    if not feat_file.exists() and not feat_file.is_symlink():
        return None
    check_regular_file(feat_file, "feature file")  # a FIFO would block np.load
    try:
        feat = np.load(feat_file, allow_pickle=False)
    except Exception as exc:
        raise DataFormatError(f"{feat_file}: unreadable .npy file ({first_line(exc)})") from None
    if feat.ndim != 2 or feat.dtype.kind not in "iuf":
        raise DataFormatError(
            f"{feat_file}: expected a 2-d array of real numbers [n_items, d], got {feat.dtype} of shape {feat.shape}"
        )
    if feat.shape[1] == 0:
        raise DataFormatError(f"{feat_file}: has 0 feature columns (shape {feat.shape}); remove the file or fill it")
    if feat.shape[0] < n_items:
        raise DataFormatError(
            f"{feat_file}: {feat.shape[0]} feature rows but the interactions name {n_items} items"
        )
    feat = np.ascontiguousarray(feat[:n_items], dtype=np.float32)
    if not np.isfinite(feat).all():
        raise DataFormatError(f"{feat_file}: contains NaN or infinite values")
    return feat


def file_digest(path: Path) -> str:
    """blake2b-128 of a file's bytes, read in 16 MiB chunks."""
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()



def target_folder(data_dir: str | Path, name: str, force: bool) -> Path:
    """The folder dataset ``name`` will be built in, checked before any work: an existing one is refused unless
    ``force``; a symbolic link always (`mgtune.files.check_replaceable`); ``data_dir`` must be writable."""
    target = check_replaceable(dataset_dir(data_dir, name), force)
    check_writable_dir("--data-dir", target.parent)
    return target
