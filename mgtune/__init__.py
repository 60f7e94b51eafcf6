"""mgtune: hyperparameter studies of multimodal recommenders trained with Mirror Gradient.

Importing the package is cheap: Ray, Optuna and matplotlib load only inside `study` and `report`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
