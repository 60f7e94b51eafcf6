r"""Item features spoiled at test time: noise, missing modalities, swapped items (`mgtune robustness`).

MG's paper ("towards robust multimodal recommender systems") argues that a model trained towards
flat minima holds up when its multimodal inputs are noisy or change after training. A
`Perturbation` makes such inputs from a dataset's clean features; training data and weights are
untouched. Kinds, for the chosen modality (``image``, ``text`` or ``both``):

- ``gaussian``: :math:`x_{ij} + \ell\,\sigma_j\,\varepsilon_{ij}`, :math:`\varepsilon \sim N(0, 1)`,
  with :math:`\sigma_j` the standard deviation of feature dimension :math:`j` over the items and
  the level :math:`\ell \ge 0` ("inherent noise": stuffed titles, poor photos);
- ``mask``: a share :math:`\ell \in [0, 1]` of the items lose the modality entirely: their rows
  become zeros or the mean feature (``fill``), since models differ in what "missing" means;
- ``swap``: a share :math:`\ell` of the items get another item's features ("information
  adjustment": a new photo, an edited description); the chosen items' rows are rotated along a
  random order, so every chosen item gets another chosen item's row.

With ``both``, mask and swap pick the same items in each modality (the item's whole content goes
or moves); Gaussian noise is drawn for each modality. The random draws depend only on ``seed``,
the kind and the level, so every model and arm sees the same spoiled features. Level 0 returns the
clean arrays. The result is an in-memory `Dataset` with no fingerprint: on-disk caches keyed by
the dataset's content never serve it, and never store it (`mgtune.models._blocks.cache`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mgtune.data import Dataset
from mgtune.errors import ConfigError, DataFormatError
from mgtune.store.robustness import KINDS

__all__ = ["KINDS", "MODALITIES", "FILLS", "Perturbation", "perturb"]

MODALITIES = ("image", "text", "both")
FILLS = ("zero", "mean")


@dataclass(frozen=True)
class Perturbation:
    """One way to spoil the item features; `ConfigError` for an unknown kind or a level out of range."""

    kind: str
    level: float
    modality: str = "both"
    seed: int = 0
    fill: str = "zero"  # mask only: what a missing row becomes

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown perturbation kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if self.modality not in MODALITIES:
            raise ConfigError(f"unknown modality {self.modality!r}; valid: {', '.join(MODALITIES)}")
        if self.fill not in FILLS:
            raise ConfigError(f"unknown mask fill {self.fill!r}; valid: {', '.join(FILLS)}")
        if not np.isfinite(self.level) or self.level < 0:
            raise ConfigError(f"perturbation levels must be >= 0, got {self.level}")
        if self.kind != "gaussian" and self.level > 1:
            raise ConfigError(f"a {self.kind} level is a share of the items, in [0, 1]; got {self.level}")


def perturb(data: Dataset, p: Perturbation) -> Dataset:
    """``data`` with ``p`` applied to its item features (a new `Dataset`; ``data`` is unchanged)."""
    present = data.modalities()
    names = list(present) if p.modality == "both" else [p.modality]
    if not names:
        data.features("image")  # raises: no features at all
    for m in names:
        if m not in present:
            raise DataFormatError(f"--modality {p.modality}: {data.path} has no {m} features")
    rng = np.random.default_rng([p.seed, KINDS.index(p.kind), round(p.level * 1_000_000)])
    n = data.n_items
    chosen = rng.choice(n, size=round(p.level * n), replace=False) if p.kind != "gaussian" else None
    new = dict(present)
    for m in names:
        new[m] = _spoil(present[m], p, rng, chosen) if p.level > 0 else present[m]
    return dataclasses.replace(data, image_feat=new.get("image"), text_feat=new.get("text"), fingerprint="")


def _spoil(feat: np.ndarray, p: Perturbation, rng: np.random.Generator, chosen: np.ndarray | None) -> np.ndarray:
    out = feat.astype(np.float32, copy=True)
    if p.kind == "gaussian":
        std = feat.std(axis=0, dtype=np.float64).astype(np.float32)
        out += (p.level * std) * rng.standard_normal(feat.shape, dtype=np.float32)
        return out
    assert chosen is not None
    if p.kind == "mask":
        out[chosen] = 0.0 if p.fill == "zero" else feat.mean(axis=0, dtype=np.float64).astype(np.float32)
        return out
    if len(chosen) > 1:  # swap: chosen[i] gets the row of chosen[i + 1], the last the first's
        out[chosen] = feat[np.roll(chosen, -1)]
    return out
