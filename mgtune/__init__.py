"""mgtune: hyperparameter studies of multimodal recommenders trained with Mirror Gradient.

Importing the package is cheap: Ray, Optuna and matplotlib load only inside `study` and `report`.
"""

import os

# Before torch allocates anything: large CPU tensors on 2 MiB transparent huge pages. Every training
# step frees and re-allocates dense gradients as big as a model's feature tables (FREEDOM: 7,050 x
# 4,096 floats); on 4 KiB pages each re-allocation costs ~28,000 page faults, about 40% of a CPU
# step. Torch's CPU allocator reads it once, at its first allocation, so it takes effect when mgtune
# is imported before any tensor is made (the CLI, Ray trials and the benchmarks do); a user's own
# setting wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
__all__ = ["__version__"]
