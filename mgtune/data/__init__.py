"""Data layer: MMRec-format datasets, synthetic generators, training batches."""

from mgtune.data.dataset import AMAZON_DATASETS, Dataset, Split, dataset_dir, load_dataset
from mgtune.data.sampler import Batch, InteractionIndex, TrainSampler
from mgtune.data.synth import DEMO_NAME, PRESETS, SynthSettings, ensure_demo, make_synthetic

__all__ = [
    "AMAZON_DATASETS", "Dataset", "Split", "dataset_dir", "load_dataset",
    "Batch", "InteractionIndex", "TrainSampler",
    "DEMO_NAME", "PRESETS", "SynthSettings", "ensure_demo", "make_synthetic",
]
