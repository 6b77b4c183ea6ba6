"""InfoGAN: GANs whose latent codes become interpretable without labels (Chen et al. 2016).

The operations, one call each: `train` (into a run directory, with resume), `load` (a run,
export or .safetensors file), `evaluate_run` (the evaluation report), `select` (pick a run
without labels), `save_traversal`; `InfoGAN` generates, encodes and exports.
"""

from infogan.config import Config, config_from_dict, resolve_config
from infogan.core.latent import Latent, LatentSpec
from infogan.errors import InfoGANError
from infogan.evaluation.disentanglement import GroundTruth, dsprites_truth, evaluate_disentanglement, representation_of
from infogan.evaluation.measures import cluster_metrics, evaluate, evaluate_disentanglement_of, information_bounds
from infogan.evaluation.quality import (
    frechet_distance,
    load_feature_classifier,
    quality_score,
    train_feature_classifier,
)
from infogan.evaluation.report import evaluate_run
from infogan.evaluation.run_selection import select
from infogan.evaluation.selection import SelectionSizes, select_by_agreement, select_models
from infogan.model import InfoGAN, load
from infogan.training.loop import Trainer
from infogan.training.memory import reuse_freed_memory
from infogan.training.run import TrainResult, train
from infogan.version import __version__
from infogan.viz.traversal import save_traversal

__all__ = [
    "Config",
    "GroundTruth",
    "InfoGAN",
    "InfoGANError",
    "Latent",
    "LatentSpec",
    "SelectionSizes",
    "TrainResult",
    "Trainer",
    "__version__",
    "cluster_metrics",
    "config_from_dict",
    "dsprites_truth",
    "evaluate",
    "evaluate_disentanglement",
    "evaluate_disentanglement_of",
    "evaluate_run",
    "frechet_distance",
    "information_bounds",
    "load",
    "load_feature_classifier",
    "quality_score",
    "resolve_config",
    "save_traversal",
    "select",
    "representation_of",
    "reuse_freed_memory",
    "select_by_agreement",
    "select_models",
    "train",
    "train_feature_classifier",
]
