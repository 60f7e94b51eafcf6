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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgtune.checks import MAX_SEED, check_int, check_writable_dir
from mgtune.data.dataset import dataset_dir, target_folder
from mgtune.data.npy_rows import write_npy_rows
from mgtune.errors import ConfigError
from mgtune.files import atomic_open, replace_dir, sigterm_as_interrupt
from mgtune.options import option

__all__ = ["Preset", "PRESETS", "SynthSettings", "synthesize", "write_dataset", "make_synthetic", "ensure_demo",
           "DEMO_NAME"]

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
    # `small`'s shape with steep popularity: hyperparameters matter here (VBPR's reg_weight alone moves
    # test recall@20 by half), so a search is measured against a grid that is not flat.
    "hard": Preset(n_users=2_000, n_items=800, n_interactions=18_000, image_dim=256, text_dim=128, pop_skew=1.6),
    # Amazon Baby's shape (MMRec's preprocessed 5-core version).
    "baby": Preset(n_users=19_445, n_items=7_050, n_interactions=160_792, image_dim=4_096, text_dim=384,
                   n_clusters=40),
    # Amazon Electronics' shape (MMRec's preprocessed 5-core version).
    "elec": Preset(n_users=192_403, n_items=63_001, n_interactions=1_689_188, image_dim=4_096, text_dim=384,
                   n_clusters=80),
}
_GUMBEL_MAX = 2_000_000_000  # above this many (user, item) keys, draw items successively (see _successive_draws)


def synthesize(
    preset: Preset, seed: int = 0, feature_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (users, items, x_label, image_feat, text_feat) for ``preset``.

    With ``feature_dir``, the feature matrices are written there in row chunks as
    ``image_feat.npy``/``text_feat.npy`` and returned as memory maps of those files (Elec's
    4096-d matrix is 1 GB; it never exists in memory, let alone twice). Same numbers either way.
    """
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
    scaled_user_f = np.hstack([user_f / p.temp, np.ones((p.n_users, 1))]).astype(np.float32)
    biased_item_f = np.hstack([item_norm, bias[:, None]]).astype(np.float32)  # u.i / temp + bias in one product
    users, items = [], []
    chunk = max(1, 4_000_000 // p.n_items)
    for start in range(0, p.n_users, chunk):
        u = np.arange(start, min(start + chunk, p.n_users))
        if p.n_users * p.n_items > _GUMBEL_MAX:  # Elec: 1.2e10 Gumbel keys would take half an hour
            picks = _successive_draws(scaled_user_f[u], biased_item_f, counts[u], rng)
        else:
            logits = (user_f[u] @ item_norm.T) / p.temp + bias
            order = np.argsort(-(logits + rng.gumbel(size=logits.shape)), axis=1)
            picks = [order[row, : counts[user]] for row, user in enumerate(u)]
        for user, picked in zip(u, picks):  # load-time only
            users.append(np.full(len(picked), user))
            items.append(picked)
    users_a, items_a = np.concatenate(users), np.concatenate(items)
    labels = _split_labels(counts, rng)

    image = _project(item_f, p.image_dim, p.feat_noise, rng, feature_dir and feature_dir / "image_feat.npy")
    text = _project(item_f, p.text_dim, p.feat_noise, rng, feature_dir and feature_dir / "text_feat.npy")
    return users_a, items_a, labels, image, text


def _successive_draws(
    user_f: np.ndarray, item_f: np.ndarray, counts: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per user (row of ``user_f``), ``counts[row]`` distinct items drawn successively ∝ exp(logit).

    The logits are ``user_f @ item_f.T`` (temperature and popularity bias folded in by the caller),
    in float32. The first distinct values of an i.i.d. stream drawn ∝ exp(logit) are distributed
    exactly as Gumbel top-k, but need about ``counts`` inverse-CDF lookups instead of one Gumbel key
    per item. A row that comes up short is drawn again with a longer stream.
    """
    cdf = user_f @ item_f.T
    cdf -= cdf.max(axis=1, keepdims=True)
    np.exp(cdf, out=cdf)
    np.cumsum(cdf, axis=1, out=cdf)
    out = []
    for row, need in enumerate(counts.tolist()):  # load-time only
        picked, n_draw = np.empty(0, dtype=np.int64), 2 * need + 8
        while len(picked) < need:
            drawn = np.searchsorted(cdf[row], rng.random(n_draw) * cdf[row, -1])
            drawn = np.minimum(drawn, cdf.shape[1] - 1)
            _, first = np.unique(drawn, return_index=True)
            picked, n_draw = drawn[np.sort(first)][:need], 4 * n_draw
        out.append(picked)
    return out


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


def _project(
    item_f: np.ndarray, dim: int, noise: float, rng: np.random.Generator, path: Path | None = None
) -> np.ndarray:
    """Noisy projections of the item factors, float32, made (and written to ``path``) in row chunks.

    With ``path`` the rows are written with ordinary writes (`mgtune.data.npy_rows`: a full disk is an
    error, where a writable memory map would die of SIGBUS) and a read-only map of the file is returned.
    """
    w = rng.normal(size=(item_f.shape[1], dim)) / np.sqrt(item_f.shape[1])
    offset = rng.normal(size=dim) * 0.5
    n_items = item_f.shape[0]
    step = max(1, 8_000_000 // dim)
    parts = ((start, item_f[start : start + step]) for start in range(0, n_items, step))
    # the noise stream is the same as one (n_items, dim) draw
    rows = ((start, part @ w + offset + noise * rng.normal(size=(len(part), dim))) for start, part in parts)
    if path is None:
        feat = np.empty((n_items, dim), np.float32)
        for start, values in rows:
            feat[start : start + len(values)] = values
        return feat
    with write_npy_rows(path, n_items, dim) as out:
        for start, values in rows:
            out.write_rows(np.arange(start, start + len(values)), values)
    return np.load(path, mmap_mode="r")


def write_dataset(
    folder: Path, name: str, users: np.ndarray, items: np.ndarray, labels: np.ndarray,
    image: np.ndarray | None, text: np.ndarray | None,
) -> Path:
    """Write MMRec's format into ``folder``; each file appears atomically (temp file + rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    for fname, arr in (("image_feat.npy", image), ("text_feat.npy", text)):
        in_place = isinstance(arr, np.memmap) and Path(str(arr.filename)).resolve() == (folder / fname).resolve()
        if arr is not None and not in_place:  # a memmap `synthesize` wrote here is complete
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


@dataclass(frozen=True)
class SynthSettings:
    """``mgtune data synth`` (its checks are `make_synthetic`'s)."""

    name: str = option(help="dataset name: the folder <data-dir>/<name>")
    preset: str = option("small", choices=tuple(PRESETS), help="tiny | small | hard (steep popularity) | baby | "
                         "elec (Amazon shapes)")
    seed: int = option(0, help="seed of the generator")
    data_dir: str = option("datasets", help="the folder of dataset folders")
    force: bool = option(False, const=True, help="replace an existing dataset of that name (atomically)")

    def make(self) -> Path:
        """Write the dataset; SIGTERM stops it as Ctrl-C does (the temp folder removed)."""
        with sigterm_as_interrupt():
            return make_synthetic(self.data_dir, self.name, self.preset, self.seed, force=self.force)


def make_synthetic(data_dir: str | Path, name: str, preset: str, seed: int = 0, force: bool = False) -> Path:
    """Generate preset ``preset`` and write it as ``<data_dir>/<name>``.

    An existing dataset folder is refused unless ``force``; then the new dataset is built in a temp
    folder beside it and swapped in whole, so nothing of the old one (a ``user_graph_dict.npy``, a
    ``.mgtune_cache/``) survives into the new data, and a failure leaves the old one as it was.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    check_int("seed", seed, low=0, high=MAX_SEED)
    folder = target_folder(data_dir, name, force)  # names that are paths, links, an existing one unless force
    # features stream into the temp folder as they are drawn (elec's would not fit twice in memory)
    replace_dir(folder, lambda tmp: write_dataset(tmp, name, *synthesize(PRESETS[preset], seed, feature_dir=tmp)),
                replace=force)
    return folder



def ensure_demo(data_dir: str | Path, name: str) -> None:
    """Create the built-in ``demo`` dataset (the ``small`` preset, seed 0) on first use."""
    folder = dataset_dir(data_dir, name)
    if name != DEMO_NAME or (folder / f"{name}.inter").exists():
        return
    check_writable_dir("--data-dir", folder.parent)
    if folder.exists():  # an unfinished demo: its files are each written atomically, so complete it in place
        write_dataset(folder, name, *synthesize(PRESETS["small"], 0))
        return
    try:  # never replaces: a concurrent trial that made it first keeps its folder
        replace_dir(folder, lambda tmp: write_dataset(tmp, name, *synthesize(PRESETS["small"], 0)))
    except (OSError, ConfigError):
        if not (folder / f"{name}.inter").exists():
            raise


__all__ += ["make_synthetic"]
