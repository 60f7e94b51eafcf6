"""Models: one file per recommender, registered by lower-case name in `registry`.

Every public module of this package is imported here, so adding a built-in model is adding its file;
a model of your own comes from an installed plugin or a file of yours (`registry`, `model_files`).
"""

import importlib
import pkgutil

from mgtune.models.base import MODALITY_NEEDS, ModelConfig, Recommender, parse_config
from mgtune.models.model_files import load_model_file, load_model_module
from mgtune.models.registry import get_model, load_plugins, model_names, model_origin, parse_models, register

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "MODALITY_NEEDS", "ModelConfig", "Recommender", "parse_config", "get_model", "model_names", "model_origin",
    "parse_models", "register", "load_plugins", "load_model_file", "load_model_module",
]
