"""Image grids: sample grids, traversal grids (paper Fig. 2 style), stacked panels, PNG bytes
and animated traversals (GIF)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from infogan.errors import InfoGANError
from infogan.fileio import atomic_write

MAX_GRID_IMAGES = 4096  # a 64 x 64 grid: beyond that the images are too small to see on any screen


def check_grid_size(count: int, name: str = "the number of images") -> None:
    """Refuse (InfoGANError) a grid of more than MAX_GRID_IMAGES images, naming `name` (a flag)."""
    if count > MAX_GRID_IMAGES:
        raise InfoGANError(
            f"{name} is {count:,}: a grid holds at most {MAX_GRID_IMAGES:,} images (64 x 64), already too "
            "small to see one by one; make several grids (--seed) or generate them from Python"
        )


def grid(images: torch.Tensor, columns: int, padding: int = 2) -> torch.Tensor:
    """One (C, H, W) image in [0, 1] laying `images` (N, C, h, w) out in rows of `columns`
    (at most MAX_GRID_IMAGES of them)."""
    check_grid_size(len(images))
    from torchvision.utils import make_grid  # imported here: torchvision adds a second to every command's start

    return make_grid(images, nrow=columns, padding=padding, pad_value=1.0)


def stack_panels(panels: list[torch.Tensor], gap: int = 8) -> torch.Tensor:
    """Panels (C, H_i, W_i) one above another on a white background, left-aligned."""
    width = max(p.shape[2] for p in panels)
    height = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    canvas = torch.ones(panels[0].shape[0], height, width)
    top = 0
    for panel in panels:
        canvas[:, top : top + panel.shape[1], : panel.shape[2]] = panel
        top += panel.shape[1] + gap
    return canvas


def save_image_atomically(image: torch.Tensor, path: str | Path) -> None:
    """Write a (C, H, W) image in [0, 1]; the file appears complete or not at all."""
    save_pil_atomically(Image.fromarray(to_uint8(image)), path)


def save_grid(images: torch.Tensor, path: str | Path, columns: int) -> None:
    """Save `images` (N, C, h, w) in [0, 1] as one grid image."""
    save_image_atomically(grid(images, columns), path)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) image in [0, 1] as uint8 (H, W) for one channel or (H, W, C), rounded the
    way torchvision's save_image rounds (so saved files and PNG bytes hold the same pixels)."""
    pixels = image.detach().cpu().float().mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    return pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()


def png_bytes(image: torch.Tensor) -> bytes:
    """A (C, H, W) image in [0, 1] (grey or RGB) encoded as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


# -- animated traversals --------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """One code's traversal: `images` (rows * columns, C, H, W) in [0, 1], row-major, the code
    taking the value of column j in every row (as `traversal_latents` lays them out); `title`
    names the code ("c1 (digit)") and `captions` say the value of each column ("c2 = -2.00")."""

    title: str
    images: torch.Tensor
    columns: int
    captions: tuple[str, ...]

    def column(self, j: int) -> torch.Tensor:
        """The images of column j, one per row."""
        return self.images[j :: self.columns]


def back_and_forth(frames: int) -> list[float]:
    """Positions in [0, 1] for `frames` frames: up from 0 to 1, then back down, looping
    without repeating either end."""
    if frames < 2:
        return [0.0] * max(frames, 0)
    half = frames / 2
    return [1.0 - abs(1.0 - t / half) for t in range(frames)]


def traversal_frames(sweeps: list[Sweep], frames: int | None = None, scale: int = 2) -> list[Image.Image]:
    """Frames of an animated traversal: one panel per sweep, stacked, each a row of its images
    (one per traversal row) at the sweep's current column, captioned with the code's title and
    value; every code goes back and forth over its columns at once. `frames` defaults to two
    passes over the longest sweep; images are enlarged `scale` times (nearest neighbour)."""
    if not sweeps:
        raise InfoGANError("a traversal animation needs at least one code to sweep")
    longest = max(s.columns for s in sweeps)
    frames = 2 * (longest - 1) if frames is None else frames
    font = ImageFont.load_default(size=12)
    out = []
    for position in back_and_forth(max(frames, 1)):
        panels = []
        for sweep in sweeps:
            j = round(position * (sweep.columns - 1))
            row = grid(sweep.column(j), columns=len(sweep.column(j)))
            panels.append(_captioned(row, f"{sweep.title} = {sweep.captions[j]}", font, scale))
        out.append(_stack_images(panels))
    return out


def _captioned(panel: torch.Tensor, caption: str, font, scale: int) -> Image.Image:
    image = Image.fromarray(to_uint8(panel)).convert("RGB")
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    strip = 18
    canvas = Image.new("RGB", (image.width, image.height + strip), "white")
    ImageDraw.Draw(canvas).text((4, 2), caption, fill="black", font=font)
    canvas.paste(image, (0, strip))
    return canvas


def _stack_images(images: list[Image.Image], gap: int = 6) -> Image.Image:
    width = max(i.width for i in images)
    canvas = Image.new("RGB", (width, sum(i.height for i in images) + gap * (len(images) - 1)), "white")
    top = 0
    for image in images:
        canvas.paste(image, (0, top))
        top += image.height + gap
    return canvas


def labelled_rows(rows: list[tuple[str, torch.Tensor]], scale: int = 1) -> Image.Image:
    """One row of images per entry, its label written to the left: `rows` holds (label,
    images (N, C, H, W) in [0, 1]) pairs, each laid out in a single row."""
    if not rows:
        raise InfoGANError("a figure of labelled rows needs at least one row")
    font = ImageFont.load_default(size=12)
    strips = []
    for _, images in rows:
        strip = Image.fromarray(to_uint8(grid(images, columns=len(images)))).convert("RGB")
        strips.append(strip.resize((strip.width * scale, strip.height * scale), Image.Resampling.NEAREST))
    margin = 8 + max(int(ImageDraw.Draw(strips[0]).textlength(label, font=font)) for label, _ in rows)
    width = margin + max(strip.width for strip in strips)
    canvas = Image.new("RGB", (width, sum(strip.height for strip in strips)), "white")
    draw, top = ImageDraw.Draw(canvas), 0
    for (label, _), strip in zip(rows, strips):
        draw.text((4, top + strip.height // 2 - 7), label, fill="black", font=font)
        canvas.paste(strip, (margin, top))
        top += strip.height
    return canvas


def check_still_image(path: str | Path) -> str:
    """The PIL format of a still image file named `path` (png or jpeg), or an InfoGANError."""
    fmt = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg"}.get(Path(path).suffix.lstrip(".").lower())
    if fmt is None:
        raise InfoGANError(f"output {path} must end in .png, .jpg or .jpeg")
    return fmt


def save_pil_atomically(image: Image.Image, path: str | Path) -> None:
    """Write a PIL image as PNG or JPEG; the file appears complete or not at all."""
    path = Path(path)
    fmt = check_still_image(path)
    try:
        with atomic_write(path) as tmp:
            image.save(tmp, format=fmt)
    except OSError as exc:
        raise InfoGANError(f"cannot write {path}: {exc.strerror or exc}") from None


def save_animation(frames: list[Image.Image], path: str | Path, frame_ms: int = 120) -> None:
    """Write frames as a looping GIF; the file appears complete or not at all."""
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise InfoGANError(f"output {path} must end in .gif for an animation")
    palette = [f.convert("P", palette=Image.Palette.ADAPTIVE, colors=256) for f in frames]
    try:
        with atomic_write(path) as tmp:
            palette[0].save(tmp, format="gif", save_all=True, append_images=palette[1:], duration=frame_ms, loop=0)
    except OSError as exc:
        raise InfoGANError(f"cannot write {path}: {exc.strerror or exc}") from None
