"""Models: one file per recommender, registered by lower-case name in `registry`.

Every public module of this package is imported here, so adding a model is adding its file.
"""

import importlib
import pkgutil

from mgtune.models.base import ModelConfig, Recommender, parse_config
from mgtune.models.registry import get_model, model_names, register

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["ModelConfig", "Recommender", "parse_config", "get_model", "model_names", "register"]
