"""InfoGAN: GANs whose latent codes become interpretable without labels (Chen et al. 2016)."""

from .api import InfoGAN, load
from .config import Config, config_from_dict, resolve_config
from .disentanglement import GroundTruth, dsprites_truth, evaluate_disentanglement, representation_of
from .errors import InfoGANError
from .evaluation import cluster_metrics, evaluate, information_bounds
from .latent import Latent, LatentSpec
from .memory import reuse_freed_memory
from .trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "Config",
    "GroundTruth",
    "InfoGAN",
    "InfoGANError",
    "Latent",
    "LatentSpec",
    "Trainer",
    "cluster_metrics",
    "config_from_dict",
    "dsprites_truth",
    "evaluate",
    "evaluate_disentanglement",
    "information_bounds",
    "load",
    "resolve_config",
    "representation_of",
    "reuse_freed_memory",
]
