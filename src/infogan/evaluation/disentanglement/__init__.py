"""Disentanglement metrics for any data set with ground-truth factors.

FactorVAE, BetaVAE, MIG, DCI, SAP, modularity and explicitness, computed from a representation
function (observations -> (n, n_codes) codes) and a ground truth (factor grid -> observations),
under a named protocol (`disentanglement_lib` or `infogan_cr`, see protocols.py):

    truth = dsprites_truth()
    result = evaluate_disentanglement(representation_of(model), truth, protocol="infogan_cr")
    result["summary"]["factor_vae"], result["protocol"]
"""

from __future__ import annotations

import time

import numpy as np

from infogan.evaluation.disentanglement.information import discretize, mutual_information_gap, mutual_information_matrix
from infogan.evaluation.disentanglement.metrics import (
    beta_vae_score,
    dci_from_importance,
    dci_score,
    factor_vae_score,
    mig_score,
    modularity_explicitness,
    modularity_from_information,
    sap_from_matrix,
    sap_score,
)
from infogan.evaluation.disentanglement.protocols import (
    DISENTANGLEMENT_LIB,
    INFOGAN_CR,
    PROTOCOLS,
    Protocol,
    resolve_protocol,
)
from infogan.evaluation.disentanglement.sources import (
    GroundTruth,
    Representation,
    dsprites_truth,
    representation_of,
    shared_draws,
)

METRICS = {
    "factor_vae": factor_vae_score,
    "beta_vae": beta_vae_score,
    "mig": mig_score,
    "dci": dci_score,
    "sap": sap_score,
    "modularity_explicitness": modularity_explicitness,
}


def summarize(metrics: dict[str, dict]) -> dict[str, float | None]:
    """The headline figure of each computed metric: held-out figures where the protocol has
    held-out draws, training figures otherwise."""
    summary: dict[str, float | None] = {}
    for name in ("factor_vae", "beta_vae", "mig", "sap"):
        if name in metrics:
            summary[name] = metrics[name]["score"]
    if "dci" in metrics:
        dci = metrics["dci"]
        summary["dci_disentanglement"] = dci["disentanglement"]
        summary["dci_completeness"] = dci["completeness"]
        test = dci["informativeness_test"]
        summary["dci_informativeness"] = test if test is not None else dci["informativeness_train"]
    if "modularity_explicitness" in metrics:
        me = metrics["modularity_explicitness"]
        summary["modularity"] = me["modularity"]
        test = me["explicitness_test"]
        summary["explicitness"] = test if test is not None else me["explicitness_train"]
    return summary


def evaluate_disentanglement(
    represent: Representation,
    truth: GroundTruth,
    protocol: str | Protocol = "disentanglement_lib",
    seed: int = 0,
    metrics: list[str] | tuple[str, ...] | None = None,
) -> dict:
    """Every metric (or those named in `metrics`, keys of METRICS) under one protocol.

    Each metric starts from a generator seeded with `seed`, as disentanglement_lib evaluates
    every metric with the same random seed; metrics whose first draw has the same size therefore
    draw the same factors, which are represented once (`shared_draws`; under infogan_cr MIG,
    DCI, SAP and modularity see one set, as in InfoGAN-CR). Returns a JSON-ready dict: protocol
    (its name), options (its sizes), at_reference_sizes (whether the sizes are the named
    protocol's own), seed, factor names and sizes, codes (their number), represented (how many
    observations went through the representation function in all), summary (the headline
    figures), metrics (each metric's full result, each naming the protocol) and seconds per
    metric.
    """
    p = resolve_protocol(protocol)
    names = list(METRICS) if metrics is None else list(metrics)
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}")
    represented = [0]
    n_codes = [0]

    def counted(observations):
        codes = represent(observations)
        represented[0] += len(codes)
        n_codes[0] = int(np.shape(codes)[-1])
        return codes

    results, seconds = {}, {}
    with shared_draws():
        for name in names:
            start = time.perf_counter()
            results[name] = METRICS[name](counted, truth, np.random.default_rng(seed), p)
            seconds[name] = round(time.perf_counter() - start, 3)
    return {
        "protocol": p.name,
        "options": p.to_dict(),
        "at_reference_sizes": PROTOCOLS.get(p.name) == p,
        "seed": seed,
        "factor_names": list(truth.factor_names),
        "factor_sizes": [int(size) for size in truth.factor_sizes],
        "codes": n_codes[0],
        "represented": represented[0],
        "summary": summarize(results),
        "metrics": results,
        "seconds": seconds,
    }


__all__ = [
    "DISENTANGLEMENT_LIB",
    "INFOGAN_CR",
    "METRICS",
    "PROTOCOLS",
    "GroundTruth",
    "Protocol",
    "Representation",
    "beta_vae_score",
    "dci_from_importance",
    "dci_score",
    "discretize",
    "dsprites_truth",
    "evaluate_disentanglement",
    "factor_vae_score",
    "mig_score",
    "modularity_explicitness",
    "modularity_from_information",
    "mutual_information_gap",
    "mutual_information_matrix",
    "representation_of",
    "resolve_protocol",
    "sap_from_matrix",
    "sap_score",
    "shared_draws",
    "summarize",
]
