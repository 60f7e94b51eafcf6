"""Synthetic datasets in MMRec's on-disk format, learnable the way real interaction data is.

Generative story (deterministic for a seed):

- ``n_clusters`` taste clusters in an ``rank``-dim latent space; every item sits near one cluster
  centre, every user mixes one or two clusters;
- item popularity follows a Zipf-like law (``pop_skew``) and enters as a per-item logit bias;
- each user picks ``n_u >= 5`` distinct items with probability ∝ exp(<u, v_i> / temp + bias_i)
  (Gumbel top-k, so sampling is vectorised), then splits them ~8:1:1 at random;
- image/text features are noisy linear projections of the item factors (plus per-dimension
  offsets), so content carries real but imperfect signal about taste.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgtune.checks import MAX_SEED, check_int, check_writable_dir
from mgtune.data.dataset import dataset_dir
from mgtune.errors import ConfigError
from mgtune.files import atomic_open

__all__ = ["Preset", "PRESETS", "synthesize", "write_dataset", "ensure_demo", "DEMO_NAME"]

DEMO_NAME = "demo"


@dataclass(frozen=True)
class Preset:
    """Shape of a synthetic dataset."""

    n_users: int
    n_items: int
    n_interactions: int
    image_dim: int
    text_dim: int
    rank: int = 16
    n_clusters: int = 12
    pop_skew: float = 0.5  # popularity logit = -pop_skew * log(popularity rank)
    temp: float = 0.2  # taste logit = cos(user, item) / temp
    feat_noise: float = 1.0


PRESETS: dict[str, Preset] = {
    "tiny": Preset(n_users=300, n_items=150, n_interactions=2_400, image_dim=32, text_dim=16, n_clusters=6),
    "small": Preset(n_users=2_000, n_items=800, n_interactions=18_000, image_dim=256, text_dim=128),
    # Amazon Baby's shape (MMRec's preprocessed 5-core version).
    "baby": Preset(n_users=19_445, n_items=7_050, n_interactions=160_792, image_dim=4_096, text_dim=384,
                   n_clusters=40),
}


def synthesize(preset: Preset, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (users, items, x_label, image_feat, text_feat) for ``preset``."""
    rng = np.random.default_rng(seed)
    p = preset
    centres = rng.normal(size=(p.n_clusters, p.rank)) * 1.5
    item_cluster = rng.integers(p.n_clusters, size=p.n_items)
    item_f = centres[item_cluster] + 0.6 * rng.normal(size=(p.n_items, p.rank))
    mix = rng.dirichlet(np.full(p.n_clusters, 0.15), size=p.n_users)
    user_f = mix @ centres + 0.4 * rng.normal(size=(p.n_users, p.rank))
    user_f /= np.linalg.norm(user_f, axis=1, keepdims=True) + 1e-9
    item_norm = item_f / (np.linalg.norm(item_f, axis=1, keepdims=True) + 1e-9)
    pop_rank = rng.permutation(p.n_items) + 1
    bias = -p.pop_skew * np.log(pop_rank)

    counts = _interaction_counts(p, rng)
    users, items = [], []
    chunk = max(1, 4_000_000 // p.n_items)
    for start in range(0, p.n_users, chunk):
        u = np.arange(start, min(start + chunk, p.n_users))
        logits = (user_f[u] @ item_norm.T) / p.temp + bias
        keys = logits + rng.gumbel(size=logits.shape)
        order = np.argsort(-keys, axis=1)
        for row, user in enumerate(u):  # load-time only
            picked = order[row, : counts[user]]
            users.append(np.full(len(picked), user))
            items.append(picked)
    users_a, items_a = np.concatenate(users), np.concatenate(items)
    labels = _split_labels(counts, rng)

    image = _project(item_f, p.image_dim, p.feat_noise, rng)
    text = _project(item_f, p.text_dim, p.feat_noise, rng)
    return users_a, items_a, labels, image, text


def _interaction_counts(p: Preset, rng: np.random.Generator) -> np.ndarray:
    extra_total = p.n_interactions - 5 * p.n_users
    if extra_total < 0:
        raise ConfigError(f"preset needs n_interactions >= 5 * n_users, got {p.n_interactions}")
    weights = rng.lognormal(0.0, 1.0, size=p.n_users)
    counts = 5 + rng.multinomial(extra_total, weights / weights.sum())
    cap = max(5, p.n_items // 3)
    overflow = np.maximum(counts - cap, 0).sum()
    counts = np.minimum(counts, cap)
    while overflow > 0:  # hand capped users' surplus to others, keeping the total exact
        room = np.flatnonzero(counts < cap)
        take = rng.choice(room, size=min(overflow, len(room)), replace=False)
        counts[take] += 1
        overflow -= len(take)
    return counts


def _split_labels(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per user, ~10% valid and ~10% test (at least one each), the rest train, in random positions."""
    n_test = np.maximum(1, np.rint(0.1 * counts)).astype(np.int64)
    n_valid = n_test.copy()
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    pos = np.arange(counts.sum()) - offsets  # position within the user's list
    # random rank within each user: sort by (user, random key)
    user_of = np.repeat(np.arange(len(counts)), counts)
    order = np.lexsort((rng.random(len(pos)), user_of))
    rank = np.empty_like(pos)
    rank[order] = pos
    per_user_test, per_user_valid = n_test[user_of], n_valid[user_of]
    labels = np.zeros(len(pos), dtype=np.int64)
    labels[rank < per_user_test + per_user_valid] = 1
    labels[rank < per_user_test] = 2
    return labels


def _project(item_f: np.ndarray, dim: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    w = rng.normal(size=(item_f.shape[1], dim)) / np.sqrt(item_f.shape[1])
    offset = rng.normal(size=dim) * 0.5
    feat = item_f @ w + offset + noise * rng.normal(size=(item_f.shape[0], dim))
    return feat.astype(np.float32)


def write_dataset(
    folder: Path, name: str, users: np.ndarray, items: np.ndarray, labels: np.ndarray,
    image: np.ndarray | None, text: np.ndarray | None,
) -> Path:
    """Write MMRec's format into ``folder``; each file appears atomically (temp file + rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    for fname, arr in (("image_feat.npy", image), ("text_feat.npy", text)):
        if arr is not None:
            _atomic_write(folder / fname, arr, npy=True)
    # the .inter file last: its presence marks the dataset complete (see `ensure_demo`)
    lines = "\n".join(f"{u}\t{i}\t{x}" for u, i, x in zip(users.tolist(), items.tolist(), labels.tolist()))
    _atomic_write(folder / f"{name}.inter", ("userID\titemID\tx_label\n" + lines + "\n").encode())
    return folder


def _atomic_write(target: Path, payload: bytes | np.ndarray, npy: bool = False) -> None:
    with atomic_open(target, "wb") as fh:
        if npy:
            np.save(fh, payload)
        else:
            fh.write(payload)


def make_synthetic(data_dir: str | Path, name: str, preset: str, seed: int = 0, force: bool = False) -> Path:
    """Generate preset ``preset`` and write it as ``<data_dir>/<name>``.

    An existing dataset folder is refused unless ``force``; then the new dataset is built in a temp
    folder beside it and swapped in whole, so nothing of the old one (a ``user_graph_dict.npy``, a
    ``.mgtune_cache/``) survives into the new data, and a failure leaves the old one as it was.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    check_int("seed", seed, low=0, high=MAX_SEED)
    folder = dataset_dir(data_dir, name)  # refuses names that are paths
    if folder.exists() and not force:
        raise ConfigError(f"{folder}: already exists; pass --force to replace it")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder")
    check_writable_dir("--data-dir", folder.parent)
    arrays = synthesize(PRESETS[preset], seed)
    _replace_dir(folder, lambda tmp: write_dataset(tmp, name, *arrays))
    return folder


def _replace_dir(folder: Path, build: Callable[[Path], object]) -> None:
    """Run ``build`` on a temp folder beside ``folder``, then put it in ``folder``'s place.

    The old folder is renamed aside first and removed after the swap (two renames: between them,
    for an instant, ``folder`` is absent, never half-written).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()  # the permissions a plain mkdir gives (mkdtemp's would be 0700)
    old = tmp.with_suffix(".old")
    try:
        build(tmp)
        if folder.exists():
            os.rename(folder, old)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not folder.exists():
            os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def ensure_demo(data_dir: str | Path, name: str) -> None:
    """Create the built-in ``demo`` dataset (the ``small`` preset, seed 0) on first use."""
    folder = dataset_dir(data_dir, name)
    if name != DEMO_NAME or (folder / f"{name}.inter").exists():
        return
    check_writable_dir("--data-dir", folder.parent)
    if folder.exists():  # an unfinished demo: its files are each written atomically, so complete it in place
        write_dataset(folder, name, *synthesize(PRESETS["small"], 0))
        return
    try:
        _replace_dir(folder, lambda tmp: write_dataset(tmp, name, *synthesize(PRESETS["small"], 0)))
    except OSError:
        if not (folder / f"{name}.inter").exists():  # not a concurrent trial that made it first
            raise


__all__ += ["make_synthetic"]
