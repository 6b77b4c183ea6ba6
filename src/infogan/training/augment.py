"""Random small transforms of image batches (affine, stroke, brightness, elastic) for the augmented categorical term.

With `loss.lambda_augmented` above 0, Q must also read each categorical code from a randomly
rotated, sheared, scaled and shifted (and, with `loss.augment_stroke`, thickened or thinned;
with `loss.augment_gamma`, brightened or darkened; with `loss.augment_elastic`, smoothly
warped) copy of the generated image (`training`). A code that stands for the digit survives
such a transform; a code that splits one digit (or a pair of digits) by slant, size, position,
stroke width or brightness does not, so the term steers categorical codes towards what the
transforms leave alone.

The transforms are a pure function of uniform draws made by the caller (`draw_transforms`),
so a run stays reproducible from its seed and a step stays recordable in a CUDA graph.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from infogan.config import LossConfig

DRAWS_PER_IMAGE = 6  # the affine ones: angle, shear, scale x, scale y, shift x, shift y
ELASTIC_POINTS = 4  # an elastic warp moves a 4 x 4 grid of control points
ELASTIC_DRAWS = 2 * ELASTIC_POINTS**2


def draws_per_image(loss: LossConfig) -> int:
    """Columns of `draw_transforms` for this config: the affine ones, then one for the stroke
    width when `loss.augment_stroke` is above 0, one for the brightness when `loss.augment_gamma`
    is, then ELASTIC_DRAWS when `loss.augment_elastic` is."""
    optional = (loss.augment_stroke > 0) + (loss.augment_gamma > 0)
    return DRAWS_PER_IMAGE + optional + ELASTIC_DRAWS * (loss.augment_elastic > 0)


def draw_transforms(
    batch_size: int, loss: LossConfig, generator: torch.Generator, device: str | torch.device
) -> torch.Tensor:
    """Uniform [0, 1) draws for `transform`, (batch_size, draws_per_image(loss)). The affine
    columns are drawn first, so they are the same whichever optional transforms are on."""
    draws = torch.rand(batch_size, DRAWS_PER_IMAGE, generator=generator, device=device)
    extra = draws_per_image(loss) - DRAWS_PER_IMAGE
    if extra:
        draws = torch.cat([draws, torch.rand(batch_size, extra, generator=generator, device=device)], dim=1)
    return draws


def transform(
    images: torch.Tensor, draws: torch.Tensor, loss: LossConfig, image_range: tuple[float, float] = (0.0, 1.0)
) -> torch.Tensor:
    """The term's transform of `images` (values in `image_range`) with the ranges in `loss`: the
    stroke width first (when on), the brightness (when on), then `random_affine` with the elastic
    warp (when on) added to its sampling grid."""
    expected = (images.shape[0], draws_per_image(loss))
    if draws.shape != expected:
        raise ValueError(f"draws has shape {tuple(draws.shape)}; expected {expected} (make them with draw_transforms)")
    column = DRAWS_PER_IMAGE
    if loss.augment_stroke > 0:
        images = change_stroke_width(images, (draws[:, column] * 2 - 1) * loss.augment_stroke)
        column += 1
    if loss.augment_gamma > 0:
        exponent = (1 + loss.augment_gamma) ** (draws[:, column] * 2 - 1)
        images = change_brightness(images, exponent, image_range)
    offsets = None
    if loss.augment_elastic > 0:
        offsets = elastic_offsets(draws[:, -ELASTIC_DRAWS:], images.shape[-2:], loss.augment_elastic)
    affine = draws[:, :DRAWS_PER_IMAGE]
    return random_affine(
        images, affine, loss.augment_degrees, loss.augment_shift, loss.augment_scale, loss.augment_shear, offsets
    )


def elastic_offsets(draws: torch.Tensor, size: tuple[int, int], pixels: float) -> torch.Tensor:
    """A smooth random warp: each of ELASTIC_POINTS x ELASTIC_POINTS control points moves by up
    to +-pixels in x and y (per `draws`, (B, ELASTIC_DRAWS) in [0, 1)), and every pixel by the
    bicubic interpolation of those moves. Returned as offsets to a sampling grid in [-1, 1]
    coordinates, shape (B, H, W, 2)."""
    height, width = size
    moves = (draws.to(torch.float32) * 2 - 1).view(-1, 2, ELASTIC_POINTS, ELASTIC_POINTS) * pixels
    scale = torch.tensor([2 / width, 2 / height], device=draws.device).view(1, 2, 1, 1)
    field = F.interpolate(moves * scale, size=(height, width), mode="bicubic", align_corners=True)
    return field.permute(0, 2, 3, 1)


def change_stroke_width(images: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Thicken (amount > 0) or thin (amount < 0) bright strokes on a dark background, per image:
    each image moves `|amount|` (at most 1) of the way to its 3x3 grey-scale dilation (max over
    the neighbourhood: one pixel more on every side) or erosion (min: one pixel less)."""
    amount = amount.to(images.dtype).view(-1, 1, 1, 1)
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
    return images + amount.clamp(min=0) * (dilated - images) + (-amount).clamp(min=0) * (eroded - images)


def change_brightness(
    images: torch.Tensor, exponent: torch.Tensor, image_range: tuple[float, float] = (0.0, 1.0)
) -> torch.Tensor:
    """Raise each image's intensities, scaled to [0, 1] within `image_range`, to its `exponent`
    (below 1 brightens, above 1 darkens): the background (the low end) and the brightest value
    stay where they are and the order of intensities is kept. Intensities are kept from 1e-3
    up, where the power's slope stays finite."""
    low, high = image_range
    unit = ((images - low) / (high - low)).clamp(1e-3, 1.0)
    return low + (high - low) * unit ** exponent.to(images.dtype).view(-1, 1, 1, 1)


def random_affine(
    images: torch.Tensor,
    draws: torch.Tensor,
    degrees: float,
    shift: float,
    scale: float,
    shear: float = 0.0,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rotate each image by up to +-degrees, shear it by up to +-shear (horizontal shift per unit of
    height), scale its width and height by 1 +- scale each and shift it by up to +-shift pixels,
    per image as `draws` (B, DRAWS_PER_IMAGE) in [0, 1) say; differentiable in `images`.

    Pixels that come from outside the image repeat its border (the background for digits).
    """
    if draws.shape != (images.shape[0], DRAWS_PER_IMAGE):
        raise ValueError(f"draws has shape {tuple(draws.shape)}; expected ({images.shape[0]}, {DRAWS_PER_IMAGE})")
    signed = draws.to(torch.float32) * 2 - 1
    angle = signed[:, 0] * math.radians(degrees)
    slant = signed[:, 1] * shear
    zoom_x, zoom_y = 1 + signed[:, 2] * scale, 1 + signed[:, 3] * scale
    height, width = images.shape[-2:]
    # affine_grid maps each output pixel to where it reads the input, in [-1, 1] coordinates:
    # here (rotation @ shear @ 1/zoom), which is the inverse of a transform of the same kind
    cos, sin = torch.cos(angle), torch.sin(angle)
    a, b = cos / zoom_x, (cos * slant - sin) / zoom_y
    c, d = sin / zoom_x, (sin * slant + cos) / zoom_y
    shift_x = signed[:, 4] * (2 * shift / width)
    shift_y = signed[:, 5] * (2 * shift / height)
    theta = torch.stack([torch.stack([a, b, shift_x], dim=1), torch.stack([c, d, shift_y], dim=1)], dim=1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    if offsets is not None:  # a warp (elastic_offsets) on top: where each output pixel reads moves
        grid = grid + offsets.to(grid.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
