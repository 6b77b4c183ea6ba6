"""Named metric protocols: the sample sizes and options that make a disentanglement figure comparable.

A score means little without the protocol that produced it: the same representation scores
differently under held-out and training-set accuracy, with or without pruned dimensions, with
trees or a Lasso. Two protocols are named here:

- `disentanglement_lib` (Locatello et al. 2019, google-research/disentanglement_lib, the
  configurations of its unsupervised study): every classifier is scored on held-out draws.
- `infogan_cr` (Lin et al. 2020, fjxmlzn/InfoGAN-CR, gan/metric.py and gan/load_data.py): the
  metrics as the InfoGAN-CR authors computed them for their dSprites tables, mostly scored on
  the data they were fitted to.

Sizes can be changed with `protocol.replace(...)`; the name stays, so a result computed at
other sizes still says which definitions it used, and `to_dict()` records the sizes.

Where this implementation departs from the reference code (none of it changes a definition):
- Observations are drawn uniformly from the factor grid with replacement. InfoGAN-CR draws its
  two sets of 73,728 dSprites images (one to normalise FactorVAE, one for MIG, SAP, DCI and
  modularity) without replacement, as two different sets; here, under `evaluate_disentanglement`,
  one draw serves both, because every metric starts from the same seed (as disentanglement_lib
  runs each metric with the same seed) and draws of the same factors are represented once.
- InfoGAN-CR fits its BetaVAE classifier on FactorVAE's own 500 groups, pairing consecutive
  images; here BetaVAE draws its groups itself (alike in distribution) and pairs the two halves.
- Estimators are seeded from the metric's generator (the references leave gradient boosting and
  the SVC unseeded), and the guards listed in metrics.py replace divisions by zero.
- For the Lasso, informativeness is reported as R^2 (InfoGAN-CR reports none); of the other
  regressors InfoGAN-CR also tried (LassoCV, random forests) only the Lasso is implemented.
- scikit-learn is today's: LinearSVC may solve the primal rather than the dual problem (the same
  objective), and one-vs-rest logistic regression is built with OneVsRestClassifier.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

DCI_MODELS = ("gradient_boosting", "lasso")
LOGISTIC = ("liblinear_ovr", "lbfgs_multinomial")


@dataclass(frozen=True)
class Protocol:
    """Definitions and sizes of every metric. A `*_test` or `*_eval` size of 0 means the metric
    is scored on the same draws it was fitted to (training accuracy), as InfoGAN-CR does.

    round_robin: the factor held fixed in the i-th FactorVAE vote or BetaVAE point is factor
        i mod n_factors (InfoGAN-CR) rather than one drawn at random (disentanglement_lib).
    factor_vae_batch: observations per vote, all sharing one value of the fixed factor.
    factor_vae_variance_samples: observations whose per-code spread normalises the votes.
    factor_vae_prune_std: codes whose standard deviation over those is below this are left out
        of the vote (0: only codes that are exactly constant are left out).
    beta_vae_pairs: pairs of observations averaged into one point; in each pair the fixed
        factor takes the same value. beta_vae_one_value: all pairs of a point share a single
        value of it (InfoGAN-CR draws a group of 2 * pairs observations with one value).
    bins: equal-width bins per code for MIG and modularity.
    dci_model: "gradient_boosting" (a classifier per factor; importances are the trees'
        feature importances) or "lasso" (a regression of each standardised factor value on the
        standardised codes with penalty `lasso_alpha`; importances are |coefficients|).
    dci_weighted_completeness: average the factors' completeness weighted by their share of
        the importance (disentanglement_lib) or plainly (InfoGAN-CR).
    sap_continuous: score continuous factors by the squared correlation of code and factor
        value (InfoGAN-CR) instead of a linear SVC's accuracy (all factors are treated as
        discrete in disentanglement_lib's study). svc_c: the SVC's C.
    explicitness_standardize: standardise the codes (by the training draws' mean and standard
        deviation) before the logistic regressions.
    logistic: the logistic regressions of BetaVAE and explicitness (C = 1 either way):
        "liblinear_ovr" (one-vs-rest with liblinear, scikit-learn's default before 0.22, which
        disentanglement_lib's study ran with; InfoGAN-CR's code needs scikit-learn < 0.24) or
        "lbfgs_multinomial" (today's default).
    chunk: observations passed to the representation function at once; no effect on scores.
    """

    name: str
    round_robin: bool = False
    factor_vae_batch: int = 64
    factor_vae_train: int = 10000
    factor_vae_eval: int = 5000
    factor_vae_variance_samples: int = 10000
    factor_vae_prune_std: float = 0.05
    beta_vae_pairs: int = 64
    beta_vae_train: int = 10000
    beta_vae_eval: int = 5000
    beta_vae_one_value: bool = False
    mig_samples: int = 10000
    bins: int = 20
    dci_train: int = 10000
    dci_test: int = 5000
    dci_model: str = "gradient_boosting"
    lasso_alpha: float = 0.02
    dci_weighted_completeness: bool = True
    sap_train: int = 10000
    sap_test: int = 5000
    sap_continuous: bool = False
    svc_c: float = 0.01
    modularity_train: int = 10000
    modularity_test: int = 5000
    explicitness_standardize: bool = True
    logistic: str = "liblinear_ovr"
    chunk: int = 4096

    def __post_init__(self) -> None:
        at_least = {
            "factor_vae_batch": 2, "factor_vae_train": 1, "factor_vae_variance_samples": 2, "beta_vae_pairs": 1,
            "beta_vae_train": 2, "mig_samples": 2, "bins": 2, "dci_train": 2, "sap_train": 2,
            "modularity_train": 2, "chunk": 1,
            "factor_vae_eval": 0, "beta_vae_eval": 0, "dci_test": 0, "sap_test": 0, "modularity_test": 0,
        }  # fmt: skip
        for field, low in at_least.items():
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"protocol {self.name}: {field} must be an integer >= {low}, got {value!r}")
        if self.dci_model not in DCI_MODELS:
            raise ValueError(f"protocol {self.name}: dci_model must be one of {', '.join(DCI_MODELS)}")
        if self.logistic not in LOGISTIC:
            raise ValueError(f"protocol {self.name}: logistic must be one of {', '.join(LOGISTIC)}")
        if self.factor_vae_prune_std < 0 or self.lasso_alpha <= 0 or self.svc_c <= 0:
            raise ValueError(f"protocol {self.name}: factor_vae_prune_std >= 0, lasso_alpha > 0 and svc_c > 0")

    def replace(self, **changes) -> Protocol:
        """A copy with some options changed (e.g. smaller sizes for a quick curve)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


DISENTANGLEMENT_LIB = Protocol(name="disentanglement_lib")

# InfoGAN-CR's load_data.py draws 500 groups of L = 100 images for FactorVAE (and BetaVAE, as
# 50 pairs per group) and a tenth of dSprites (73,728 images) both for the normalising spread and,
# with their factors, for MIG, SAP, modularity/explicitness and DCI.
INFOGAN_CR = Protocol(
    name="infogan_cr",
    round_robin=True,
    factor_vae_batch=100,
    factor_vae_train=500,
    factor_vae_eval=0,
    factor_vae_variance_samples=73728,
    factor_vae_prune_std=0.0,
    beta_vae_pairs=50,
    beta_vae_train=500,
    beta_vae_eval=0,
    beta_vae_one_value=True,
    mig_samples=73728,
    dci_train=73728,
    dci_test=0,
    dci_model="lasso",
    dci_weighted_completeness=False,
    sap_train=73728,
    sap_test=0,
    sap_continuous=True,
    modularity_train=73728,
    modularity_test=0,
    explicitness_standardize=False,
)

PROTOCOLS = {p.name: p for p in (DISENTANGLEMENT_LIB, INFOGAN_CR)}


def resolve_protocol(protocol: str | Protocol) -> Protocol:
    """A Protocol given itself or its name."""
    if isinstance(protocol, Protocol):
        return protocol
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}") from None
