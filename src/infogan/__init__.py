"""InfoGAN: GANs whose latent codes become interpretable without labels (Chen et al. 2016).

Every command of the CLI is one call: `train` (into a run directory, with resume),
`preset_names`, `load` (a run, export or .safetensors file), `evaluate_run` (the evaluation
report), `select` (pick a run without labels), `save_samples`, `save_traversal`, `encode_files`,
`save_curves`, `train_feature_classifier`, `shipped_models` (and `model_card`); `InfoGAN`
generates, encodes and exports; the explorer is `infogan.explore.explore` (it needs the
explore extra). Wherever a model is taken, the name of a shipped model works too:
`infogan.load("mnist")`.
"""

from infogan.config import Config, config_from_dict, preset_names, resolve_config
from infogan.core.latent import Latent, LatentSpec
from infogan.errors import InfoGANError
from infogan.evaluation.disentanglement import GroundTruth, dsprites_truth, evaluate_disentanglement, representation_of
from infogan.evaluation.encoding import EncodedFiles, encode_files
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
from infogan.shipped import model_card, shipped_models
from infogan.training.loop import Trainer
from infogan.training.memory import reuse_freed_memory
from infogan.training.run import TrainResult, train
from infogan.version import __version__
from infogan.viz.curves import save_curves
from infogan.viz.samples import save_samples
from infogan.viz.traversal import save_traversal

__all__ = [
    "Config",
    "EncodedFiles",
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
    "encode_files",
    "evaluate",
    "evaluate_disentanglement",
    "evaluate_disentanglement_of",
    "evaluate_run",
    "frechet_distance",
    "information_bounds",
    "load",
    "load_feature_classifier",
    "model_card",
    "preset_names",
    "quality_score",
    "resolve_config",
    "save_curves",
    "save_samples",
    "save_traversal",
    "select",
    "representation_of",
    "reuse_freed_memory",
    "select_by_agreement",
    "select_models",
    "shipped_models",
    "train",
    "train_feature_classifier",
]
