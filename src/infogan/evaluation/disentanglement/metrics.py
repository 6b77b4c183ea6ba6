"""The disentanglement metrics, each computed from a representation function and a ground truth.

Every function takes (represent, truth, rng, protocol) and returns a JSON-ready dict that names
its protocol. Definitions follow the papers as implemented in disentanglement_lib and in the
InfoGAN-CR code; where the two differ a `Protocol` option chooses (see protocols.py). Observations
are represented in large chunks rather than one vote or point at a time, which changes nothing
but speed.

Guards the references lack (their code divides by zero there): a code that is constant on the
normalising draws never wins a FactorVAE vote; a code or factor with no importance at all scores
0 in DCI; a constant code has zero squared correlation in SAP; a code sharing no information with
any factor has modularity 0.

SciPy and scikit-learn are imported inside the functions that use them: at module level they
would add about a second to the start of every `infogan` command.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np

from infogan.evaluation.disentanglement.information import discretize, mutual_information_gap, mutual_information_matrix
from infogan.evaluation.disentanglement.protocols import Protocol, resolve_protocol
from infogan.evaluation.disentanglement.sources import (
    GroundTruth,
    Representation,
    fixed_factor_groups,
    fixed_factors,
    group_features,
    sample_codes,
)


@contextlib.contextmanager
def _fitting() -> Iterator[None]:
    """Around scikit-learn fits: one BLAS thread (these problems are small; on a busy machine
    a multi-threaded BLAS made them many times slower, and results do not depend on it) and no
    convergence warnings (the references use scikit-learn's default iteration limits)."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _seed(rng: np.random.Generator) -> int:
    """A seed for a scikit-learn estimator, drawn from the metric's generator."""
    return int(rng.integers(0, 2**31 - 1))


def _split(
    represent: Representation, truth: GroundTruth, rng: np.random.Generator, train: int, test: int, chunk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training draws and held-out draws (the training draws again when `test` is 0)."""
    x_train, y_train = sample_codes(represent, truth, train, rng, chunk)
    if not test:
        return x_train, y_train, x_train, y_train
    x_test, y_test = sample_codes(represent, truth, test, rng, chunk)
    return x_train, y_train, x_test, y_test


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Columns centred and scaled by the training array's mean and standard deviation (a
    constant column is only centred)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [(a - mean) / std for a in (train, *others)]


def _logistic(p: Protocol, rng: np.random.Generator):
    """A logistic regression (C = 1) as the protocol fits them: one-vs-rest with liblinear, or
    multinomial with lbfgs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    if p.logistic == "liblinear_ovr":
        return OneVsRestClassifier(LogisticRegression(solver="liblinear", random_state=_seed(rng)))
    return LogisticRegression(random_state=_seed(rng))


# -- FactorVAE -------------------------------------------------------------------------------------


def factor_vae_score(
    represent: Representation,
    truth: GroundTruth,
    rng: np.random.Generator,
    protocol: str | Protocol = "disentanglement_lib",
) -> dict:
    """FactorVAE score (Kim & Mnih 2018).

    Each vote draws a batch of observations that share one value of one factor; the code whose
    variance over the batch, relative to its variance over random observations, is smallest
    votes for that factor. A majority-vote classifier (each code predicts the factor it voted
    for most often in the training votes) is scored on held-out votes, or on the training votes
    when the protocol has no evaluation votes. Codes whose standard deviation is below the
    protocol's threshold take no part.

    Returns score, train_accuracy, eval_accuracy (None without evaluation votes),
    train_accuracy_revised (InfoGAN-CR's variant, in which only the n_factors codes with the
    most votes for their majority factor count), active_codes (indices of the codes that vote)
    and the training votes (n_factors, n_active).
    """
    p = resolve_protocol(protocol)
    k = truth.n_factors
    global_codes, _ = sample_codes(represent, truth, p.factor_vae_variance_samples, rng, p.chunk)
    std = global_codes.std(axis=0, ddof=1)
    active = (std > 0) & (std >= p.factor_vae_prune_std)
    observations = p.factor_vae_variance_samples
    result = {"protocol": p.name, "active_codes": np.flatnonzero(active).tolist()}
    if not active.any():
        return {**result, "score": 0.0, "train_accuracy": 0.0, "eval_accuracy": 0.0 if p.factor_vae_eval else None,
                "train_accuracy_revised": 0.0, "votes": [], "observations": observations}  # fmt: skip
    scale = std[active] ** 2

    def votes(n: int) -> np.ndarray:
        fixed, groups = fixed_factor_groups(truth, n, p.factor_vae_batch, rng, p.round_robin)

        def reduce(codes):
            return (codes[:, :, active].var(axis=1, ddof=1) / scale).argmin(axis=1)

        chosen = group_features(represent, truth, groups, p.chunk, reduce)
        table = np.zeros((k, int(active.sum())), dtype=np.int64)
        np.add.at(table, (fixed, chosen), 1)
        return table

    train = votes(p.factor_vae_train)
    observations += p.factor_vae_train * p.factor_vae_batch
    classifier = train.argmax(axis=0)
    columns = np.arange(train.shape[1])
    train_accuracy = float(train[classifier, columns].sum() / train.sum())
    revised = float(np.sort(train.max(axis=0))[::-1][:k].sum() / train.sum())
    eval_accuracy = None
    if p.factor_vae_eval:
        held_out = votes(p.factor_vae_eval)
        observations += p.factor_vae_eval * p.factor_vae_batch
        eval_accuracy = float(held_out[classifier, columns].sum() / held_out.sum())
    return {
        **result,
        "score": eval_accuracy if eval_accuracy is not None else train_accuracy,
        "train_accuracy": train_accuracy,
        "eval_accuracy": eval_accuracy,
        "train_accuracy_revised": revised,
        "votes": train.tolist(),
        "observations": observations,
    }


# -- BetaVAE ---------------------------------------------------------------------------------------


def beta_vae_score(
    represent: Representation,
    truth: GroundTruth,
    rng: np.random.Generator,
    protocol: str | Protocol = "disentanglement_lib",
) -> dict:
    """BetaVAE score (Higgins et al. 2017).

    Each point holds one factor fixed within pairs of observations (the others vary freely) and
    averages the absolute code differences of its pairs; a logistic regression (see the
    protocol's `logistic`) predicts the fixed factor from that vector. The score is its accuracy on held-out
    points, or on the training points when the protocol has none.
    """
    p = resolve_protocol(protocol)
    pairs = p.beta_vae_pairs

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        if p.beta_vae_one_value:
            fixed, groups = fixed_factor_groups(truth, n, 2 * pairs, rng, p.round_robin)
        else:
            fixed = fixed_factors(n, truth.n_factors, rng, p.round_robin)
            groups = truth.sample_factors(n * 2 * pairs, rng).reshape(n, 2 * pairs, truth.n_factors)
            rows = np.arange(n)
            groups[rows, pairs:, fixed] = groups[rows, :pairs, fixed]

        def reduce(codes):
            return np.abs(codes[:, :pairs] - codes[:, pairs:]).mean(axis=1)

        return group_features(represent, truth, groups, p.chunk, reduce), fixed

    x_train, y_train = points(p.beta_vae_train)
    if len(np.unique(y_train)) < 2:
        raise ValueError("BetaVAE: the training points hold only one factor fixed; use more points")
    with _fitting():
        model = _logistic(p, rng).fit(x_train, y_train)
        train_accuracy = float(model.score(x_train, y_train))
    eval_accuracy = None
    if p.beta_vae_eval:
        x_eval, y_eval = points(p.beta_vae_eval)
        with _fitting():
            eval_accuracy = float(model.score(x_eval, y_eval))
    return {
        "protocol": p.name,
        "score": eval_accuracy if eval_accuracy is not None else train_accuracy,
        "train_accuracy": train_accuracy,
        "eval_accuracy": eval_accuracy,
        "observations": 2 * pairs * (p.beta_vae_train + p.beta_vae_eval),
    }


# -- MIG -------------------------------------------------------------------------------------------


def mig_score(
    represent: Representation,
    truth: GroundTruth,
    rng: np.random.Generator,
    protocol: str | Protocol = "disentanglement_lib",
) -> dict:
    """Mutual information gap over random draws, codes in equal-width bins
    (`mutual_information_gap`); score is the MIG, per_factor each factor's normalised gap."""
    p = resolve_protocol(protocol)
    codes, factors = sample_codes(represent, truth, p.mig_samples, rng, p.chunk)
    gap = mutual_information_gap(codes, factors, bins=p.bins)
    return {"protocol": p.name, "score": gap["mig"], **gap, "observations": p.mig_samples}


# -- DCI -------------------------------------------------------------------------------------------


def dci_from_importance(importance: np.ndarray, weighted_completeness: bool = True) -> dict:
    """Disentanglement and completeness (Eastwood & Williams 2018) of an (n_codes, n_factors)
    importance matrix.

    A code's disentanglement is 1 minus the entropy (base n_factors) of its importance spread
    over the factors, averaged with weights proportional to each code's total importance; a
    factor's completeness is 1 minus the entropy (base n_codes) of its importance spread over
    the codes, averaged weighted by each factor's total importance or plainly.
    """
    from scipy.stats import entropy

    r = np.abs(np.asarray(importance, dtype=np.float64))
    n_codes, n_factors = r.shape
    if n_codes < 2:
        raise ValueError("DCI needs at least two codes")
    per_code = 1.0 - entropy(r.T + 1e-11, base=n_factors)
    per_factor = 1.0 - entropy(r + 1e-11, base=n_codes)
    total = r.sum()
    code_weight = r.sum(axis=1) / total if total > 0 else np.full(n_codes, 1.0 / n_codes)
    if weighted_completeness and total > 0:
        factor_weight = r.sum(axis=0) / total
    else:
        factor_weight = np.full(n_factors, 1.0 / n_factors)
    return {
        "disentanglement": float(np.sum(per_code * code_weight)),
        "completeness": float(np.sum(per_factor * factor_weight)),
        "per_code_disentanglement": per_code.tolist(),
        "per_factor_completeness": per_factor.tolist(),
    }


def dci_score(
    represent: Representation,
    truth: GroundTruth,
    rng: np.random.Generator,
    protocol: str | Protocol = "disentanglement_lib",
) -> dict:
    """DCI disentanglement, completeness and informativeness.

    gradient_boosting: for each factor a GradientBoostingClassifier (scikit-learn's defaults)
    on the codes; importances are its feature importances; informativeness is its accuracy on
    the training and on held-out draws. lasso: for each factor a Lasso regression of the
    standardised factor value on the standardised codes; importances are the absolute
    coefficients; informativeness is its R^2 (on the training draws, and held-out ones if any).
    Returns also the (n_codes, n_factors) importance matrix.
    """
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import Lasso

    p = resolve_protocol(protocol)
    x_train, y_train, x_test, y_test = _split(represent, truth, rng, p.dci_train, p.dci_test, p.chunk)
    n_codes, k = x_train.shape[1], truth.n_factors
    importance = np.zeros((n_codes, k))
    train_scores, test_scores = [], []
    with _fitting():
        if p.dci_model == "gradient_boosting":
            for j in range(k):
                model = GradientBoostingClassifier(random_state=_seed(rng)).fit(x_train, y_train[:, j])
                importance[:, j] = np.abs(model.feature_importances_)
                train_scores.append(model.score(x_train, y_train[:, j]))
                test_scores.append(model.score(x_test, y_test[:, j]))
        else:
            codes_train, codes_test = _standardize(x_train, x_test)
            values_train, values_test = _standardize(truth.values(y_train), truth.values(y_test))
            for j in range(k):
                model = Lasso(alpha=p.lasso_alpha).fit(codes_train, values_train[:, j])
                importance[:, j] = np.abs(model.coef_)
                train_scores.append(model.score(codes_train, values_train[:, j]))
                test_scores.append(model.score(codes_test, values_test[:, j]))
    return {
        "protocol": p.name,
        "model": p.dci_model,
        **dci_from_importance(importance, p.dci_weighted_completeness),
        "informativeness_train": float(np.mean(train_scores)),
        "informativeness_test": float(np.mean(test_scores)) if p.dci_test else None,
        "importance": importance.tolist(),
        "observations": p.dci_train + p.dci_test,
    }


# -- SAP -------------------------------------------------------------------------------------------


def sap_from_matrix(scores: np.ndarray) -> float:
    """SAP from an (n_codes, n_factors) score matrix: the mean over factors of the gap between
    the two codes that score highest for it."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64), axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))


def sap_score(
    represent: Representation,
    truth: GroundTruth,
    rng: np.random.Generator,
    protocol: str | Protocol = "disentanglement_lib",
) -> dict:
    """SAP score (Kumar et al. 2018).

    For each code and factor a score: for a discrete factor the accuracy of a linear SVC
    (class_weight balanced, C from the protocol) predicting the factor from that one code, on
    held-out draws or the training draws; for a continuous factor, under protocols with
    sap_continuous, the squared correlation of code and factor value. SAP averages over factors
    the gap between the best two codes. Returns also the (n_codes, n_factors) score matrix.
    """
    from sklearn.svm import LinearSVC

    p = resolve_protocol(protocol)
    x_train, y_train, x_test, y_test = _split(represent, truth, rng, p.sap_train, p.sap_test, p.chunk)
    n_codes, k = x_train.shape[1], truth.n_factors
    if n_codes < 2:
        raise ValueError("SAP needs at least two codes: it compares the best two per factor")
    continuous = truth.is_continuous if p.sap_continuous else (False,) * k
    values = truth.values(y_train)
    matrix = np.zeros((n_codes, k))
    for j in range(k):
        if continuous[j]:
            centred_codes = x_train - x_train.mean(axis=0)
            centred_value = values[:, j] - values[:, j].mean()
            cov = centred_codes.T @ centred_value / (len(values) - 1)
            var_codes = centred_codes.var(axis=0, ddof=1)
            var_value = centred_value.var(ddof=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                r2 = cov**2 / (var_codes * var_value)
            matrix[:, j] = np.where((var_codes > 1e-12) & (var_value > 0), r2, 0.0)
            continue
        for i in range(n_codes):
            with _fitting():
                svc = LinearSVC(C=p.svc_c, class_weight="balanced", random_state=_seed(rng))
                svc.fit(x_train[:, i : i + 1], y_train[:, j])
                matrix[i, j] = np.mean(svc.predict(x_test[:, i : i + 1]) == y_test[:, j])
    return {
        "protocol": p.name,
        "score": sap_from_matrix(matrix),
        "score_matrix": matrix.tolist(),
        "observations": p.sap_train + p.sap_test,
    }


# -- Modularity and explicitness -------------------------------------------------------------------


def modularity_from_information(information: np.ndarray) -> tuple[float, list[float]]:
    """Modularity (Ridgeway & Zemel 2018) of an (n_codes, n_factors) mutual information matrix:
    per code 1 - sum_{f != best} MI^2 / ((n_factors - 1) * MI_best^2), averaged over codes."""
    squared = np.square(np.asarray(information, dtype=np.float64))
    best = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - best) / (best * (squared.shape[1] - 1))
    per_code = np.where(best > 0, 1.0 - delta, 0.0)
    return float(per_code.mean()), per_code.tolist()


def _one_vs_rest_auc(model, codes: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the model's classes of the ROC AUC of its probability for that class (classes
    that are absent from, or all of, `labels` are skipped)."""
    from sklearn.metrics import roc_auc_score

    proba = model.predict_proba(codes)
    aucs = []
    for c, label in enumerate(model.classes_):
        positive = labels == label
        if positive.any() and not positive.all():
            aucs.append(roc_auc_score(positive, proba[:, c]))
    return float(np.mean(aucs)) if aucs else 0.5


def modularity_explicitness(
    represent: Representation,
    truth: GroundTruth,
    rng: np.random.Generator,
    protocol: str | Protocol = "disentanglement_lib",
) -> dict:
    """Modularity and explicitness (Ridgeway & Zemel 2018, as disentanglement_lib computes them).

    Modularity comes from the mutual information between the codes, each in `bins` equal-width
    bins, and the factors on the training draws. Explicitness is, per factor, the mean
    one-vs-rest ROC AUC of a logistic regression (the protocol's `logistic`) on all codes
    (standardised by the training draws under protocols that say so), on training and held-out
    draws; averaged over factors.
    """
    p = resolve_protocol(protocol)
    x_train, y_train, x_test, y_test = _split(represent, truth, rng, p.modularity_train, p.modularity_test, p.chunk)
    information = mutual_information_matrix(discretize(x_train, p.bins), y_train).T
    modularity, per_code = modularity_from_information(information)
    if p.explicitness_standardize:
        x_train, x_test = _standardize(x_train, x_test)
    train_auc, test_auc = [], []
    with _fitting():
        for j in range(truth.n_factors):
            model = _logistic(p, rng).fit(x_train, y_train[:, j])
            train_auc.append(_one_vs_rest_auc(model, x_train, y_train[:, j]))
            test_auc.append(_one_vs_rest_auc(model, x_test, y_test[:, j]))
    return {
        "protocol": p.name,
        "modularity": modularity,
        "per_code_modularity": per_code,
        "explicitness_train": float(np.mean(train_auc)),
        "explicitness_test": float(np.mean(test_auc)) if p.modularity_test else None,
        "per_factor_explicitness": test_auc if p.modularity_test else train_auc,
        "observations": p.modularity_train + p.modularity_test,
    }
