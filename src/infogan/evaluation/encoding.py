"""Codes of real images read from files: `encode_files()`, what `infogan encode` writes (a .csv
with a header, or a .npy table of N images by codes)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from infogan.core.latent import LatentSpec
from infogan.data.inputs import read_inputs
from infogan.errors import InfoGANError
from infogan.fileio import check_output_folder, write_output
from infogan.model import InfoGAN, load

TABLE_SUFFIXES = (".csv", ".npy")


@dataclass(frozen=True)
class EncodedFiles:
    """Images read from files and their codes: `sources` names each image (its file, or
    "NAME[i]" for image i of an IDX file), `images` are uint8 (N, C, H, W) as the model reads
    them, `codes` maps each code's name to its (N,) values, as `InfoGAN.encode` gives them."""

    sources: list[str]
    images: torch.Tensor
    codes: dict[str, torch.Tensor]

    @property
    def table(self) -> np.ndarray:
        """The codes as float32 (N, codes), one column per code in the model's order."""
        columns = [values.float().numpy() for values in self.codes.values()]
        return np.stack(columns, axis=1) if columns else np.zeros((len(self.sources), 0), np.float32)


def encode_files(
    model: InfoGAN | str | Path,
    inputs: str | Path | Sequence[str | Path],
    out: str | Path | None = None,
    *,
    device: str = "auto",
) -> EncodedFiles:
    """Read image files (PNG, JPEG) and IDX image files (.gz or not), predict their codes and,
    given `out`, write them to it as .csv or .npy; the same as `infogan encode`.

    `model` is an `InfoGAN`, or a run directory, export folder, .safetensors file or shipped
    model's name, loaded onto `device`. The .csv has a header ("source", then the codes'
    names), categorical codes as whole numbers and continuous ones with six decimals; the .npy
    holds `EncodedFiles.table`.
    """
    out = Path(out) if out is not None else None
    if out is not None:
        if out.suffix not in TABLE_SUFFIXES:
            raise InfoGANError(f"--out {out} must end in .csv or .npy")
        check_output_folder(out)
    model = model if isinstance(model, InfoGAN) else load(model, device)
    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    images, sources = read_inputs(paths, model.config.model.image_channels, model.config.model.image_size)
    encoded = EncodedFiles(sources, images, model.encode(images))
    if out is not None:
        write_output(out, _npy(encoded) if out.suffix == ".npy" else _csv(encoded, model.spec))
    return encoded


def _npy(encoded: EncodedFiles) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, encoded.table.astype(np.float32))
    return buffer.getvalue()


def _csv(encoded: EncodedFiles, spec: LatentSpec) -> bytes:
    names = list(encoded.codes)
    categorical = [spec.locate(name)[0] == "categorical" for name in names]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["source", *names])
    for source, row in zip(encoded.sources, encoded.table):
        writer.writerow([source, *(str(int(v)) if c else f"{v:.6f}" for c, v in zip(categorical, row))])
    return text.getvalue().encode("utf-8")
