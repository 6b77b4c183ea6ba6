"""Training curves from a run's metrics log: the information bound of each categorical code
against its ceiling H(c), the continuous codes' losses, and the adversarial game."""

from __future__ import annotations

from pathlib import Path

from infogan.config import Config, resolve_config
from infogan.errors import InfoGANError
from infogan.fileio import atomic_write, check_output_folder, read_jsonl
from infogan.shipped import is_shipped, resolve


def save_curves(run_dir: str | Path, out: str | Path) -> list[dict]:
    """Plot a run's curves to the PNG file `out` and return the log records plotted; the same
    as `infogan curves`. The codes are titled from the run's evaluation.json when it has one
    ("c1 (digit)"). Needs matplotlib (pip install 'infogan[plots]')."""
    run_dir = resolve(run_dir)
    if is_shipped(run_dir):
        raise InfoGANError(
            f"{run_dir.name} is a model shipped with infogan: it keeps no training log (metrics.jsonl), so it has "
            "no curves; infogan curves takes the run directory a model was trained in"
        )
    records = read_metrics(run_dir / "metrics.jsonl")
    config = resolve_config(None, run_dir / "config.yaml")
    plot_curves(records, config, out, code_titles(run_dir, config))
    return records


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl file, with a clear error when it is missing or damaged
    (a cut-off last line, as a run being written or killed leaves, is left out)."""
    path = Path(path)
    if not path.is_file():
        raise InfoGANError(f"cannot read {path}: it does not exist; is this a run directory?")
    records, _ = read_jsonl(path)
    if not records:
        raise InfoGANError(f"{path} has no entries yet; train for at least logging.log_every steps")
    return records


def code_titles(run_dir: str | Path, config: Config) -> dict[str, str]:
    """Code names for the legends: "c1 (digit)" style when the run has an evaluation.json."""
    from infogan.evaluation.labels import read_labels

    return read_labels(run_dir, config.latent, config.data.dataset).titles()


MARKED_BELOW = 20  # log points under which every point is marked: a line of one point draws nothing


def plot_curves(records: list[dict], config: Config, out: str | Path, titles: dict[str, str] | None = None) -> None:
    """Save a PNG of the curves (needs matplotlib: pip install 'infogan[plots]'). `titles` names
    the codes in the legends, e.g. {"c1": "c1 (digit)"} from `infogan.evaluation.labels`. The
    folder of `out` must exist."""
    check_output_folder(out)
    figure = curves_figure(records, config, titles)
    import matplotlib.pyplot as plt

    try:
        with atomic_write(out) as tmp:
            figure.savefig(tmp, format="png", dpi=100)
    except OSError as exc:
        raise InfoGANError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)


def curves_figure(records: list[dict], config: Config, titles: dict[str, str] | None = None):
    """The matplotlib figure of `plot_curves`: three panels; with fewer than MARKED_BELOW log
    points every point is marked, so that a run with one log point shows it."""
    if not records:
        raise InfoGANError("the metrics log has no entries: too little to plot")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InfoGANError("drawing curves needs matplotlib: pip install matplotlib") from None
    spec = config.latent
    titles = {name: (titles or {}).get(name, name) for name in spec.code_names}
    steps = [r["step"] for r in records]
    marks = {"marker": "o", "markersize": 4} if len(records) < MARKED_BELOW else {}
    figure, (info_axes, cont_axes, game_axes) = plt.subplots(1, 3, figsize=(15, 4))
    for name, entropy in zip(spec.categorical_names, spec.categorical_entropy()):
        values = [r.get(f"mi_{name}") for r in records]
        line = info_axes.plot(steps, values, label=f"{titles[name]}: H(c) - CE", **marks)[0]
        augmented = [r.get(f"mi_augmented_{name}") for r in records]
        if any(value is not None for value in augmented):  # the augmented term was on
            label = f"{titles[name]}, transformed images"
            info_axes.plot(steps, augmented, color=line.get_color(), linestyle=":", label=label, **marks)
        ceiling = f"H({name}) = {entropy:.3f}"
        info_axes.axhline(entropy, color=line.get_color(), linestyle="--", linewidth=1, label=ceiling)
    info_axes.set(title="information bound, categorical codes", xlabel="step", ylabel="nats")
    for name in spec.continuous_names:
        cont_axes.plot(steps, [r.get(f"info_loss_{name}") for r in records], label=titles[name], **marks)
    cont_axes.set(title=f"continuous codes: {config.loss.continuous_info} loss", xlabel="step")
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        game_axes.plot(steps, [r.get(key) for r in records], label=key, **marks)
    game_axes.set(title=f"adversarial game ({config.loss.adversarial})", xlabel="step")
    for axes in (info_axes, cont_axes, game_axes):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure
