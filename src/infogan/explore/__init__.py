"""`infogan explore`: a local web page that turns a trained model's codes and shows the images.

The names of codes and their values come from `infogan.evaluation.labels`; the server (`app`,
`server`) needs the `explore` extra: pip install 'infogan[explore]'.
"""

from __future__ import annotations

from pathlib import Path

from infogan.errors import InfoGANError


def explore(
    paths: list[str | Path],
    host: str = "127.0.0.1",
    port: int = 8765,
    value_range: tuple[float, float] = (-2.0, 2.0),
    device: str = "cpu",
) -> None:
    """Serve the explorer for one model or two side by side (run directories, export folders,
    .safetensors files or shipped models' names) until Ctrl-C, printing its address; the same as `infogan explore`.
    Without the `explore` extra installed, an InfoGANError says how to install it."""
    try:
        from infogan.explore.server import explore as serve
    except ImportError as exc:
        raise InfoGANError(f"infogan explore needs the explore extra ({exc}): pip install 'infogan[explore]'") from None
    serve(paths, host, port, value_range, device)
