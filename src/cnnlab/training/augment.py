"""Data augmentation per batch, on the uint8 images where they live (CPU or GPU), reproducible from a generator.

``--augment shift=2,flip,erase=0.5``:

- ``shift=S``: pad the image by S pixels of 0 on every side and crop it back at a random offset, so the
  picture moves by -S..S pixels on each axis (the "random crop with padding" of the CIFAR recipes);
- ``flip``: mirror left-right with probability 1/2 (refused for digits, where a mirrored 2 is no digit);
- ``erase=P``: with probability P, set a square of half the image's side to 0, centred anywhere in the
  image and clipped at its borders (cutout);
- ``rotate=D``: turn the image about its centre by an angle drawn uniformly from -D..D degrees, sampled
  bilinearly with 0 outside the image and rounded back to uint8.

The draws come from a ``torch.Generator`` that the training loop seeds from (seed, epoch, rank), so an
epoch's augmented images are the same when a run is resumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.data.registry import refuse_mirror
from cnnlab.errors import InputError


@dataclass(frozen=True)
class Augment:
    shift: int = 0
    flip: bool = False
    erase: float = 0.0
    rotate: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.shift or self.flip or self.erase or self.rotate)

    def text(self) -> str:
        parts = [f"shift={self.shift}"] if self.shift else []
        parts += ["flip"] if self.flip else []
        parts += [f"erase={self.erase:g}"] if self.erase else []
        parts += [f"rotate={self.rotate:g}"] if self.rotate else []
        return ",".join(parts)


def parse(text: str | None) -> Augment:
    """``"shift=2,flip,erase=0.5"`` (any subset, any order; empty or None: no augmentation)."""
    if not text:
        return Augment()
    found: dict = {}
    for part in (p.strip() for p in str(text).split(",")):
        key, _, value = part.partition("=")
        try:
            if key == "shift" and value:
                found["shift"] = int(value)
                if not 0 <= found["shift"] <= 16:
                    raise ValueError
            elif key == "flip" and not value:
                found["flip"] = True
            elif key == "erase" and value:
                found["erase"] = float(value)
                if not 0 <= found["erase"] <= 1:
                    raise ValueError
            elif key == "rotate" and value:
                found["rotate"] = float(value)
                if not 0 <= found["rotate"] <= 180:
                    raise ValueError
            else:
                raise ValueError
        except ValueError:
            raise InputError(
                f"--augment {text!r}: cannot read {part!r}. Expected some of shift=S (0-16 pixels), flip, "
                "erase=P (0-1), rotate=D (0-180 degrees), comma-separated, e.g. shift=2,flip,erase=0.5."
            ) from None
    return Augment(**found)


def check_for(augment: Augment, dataset: str) -> None:
    if augment.flip:
        refuse_mirror(dataset, "--augment flip", "Use shift and erase for digits.")


def apply(x: torch.Tensor, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """uint8 (N, H, W, C) -> augmented uint8 (N, H, W, C), a new tensor on the same device."""
    if not augment.active or not len(x):
        return x
    n, h, w, _ = x.shape
    device = x.device

    def draw(high: int, count: int = n) -> torch.Tensor:  # integers in [0, high), on the generator's device
        return torch.randint(high, (count,), generator=generator, device=generator.device).to(device)

    if augment.rotate:
        x = rotate(x, (torch.rand(n, generator=generator, device=generator.device).to(device) * 2 - 1) * augment.rotate)
    if augment.shift:
        s = augment.shift
        padded = torch.nn.functional.pad(x, (0, 0, s, s, s, s))  # zeros around H and W
        dy, dx = draw(2 * s + 1), draw(2 * s + 1)
        rows = (torch.arange(h, device=device)[None, :] + dy[:, None])[:, :, None]  # (n, h, 1)
        cols = (torch.arange(w, device=device)[None, :] + dx[:, None])[:, None, :]  # (n, 1, w)
        x = padded[torch.arange(n, device=device)[:, None, None], rows, cols]
    if augment.flip:
        mirrored = draw(2).bool()[:, None, None, None]
        x = torch.where(mirrored, x.flip(2), x)
    if augment.erase:
        chosen = torch.rand(n, generator=generator, device=generator.device).to(device) < augment.erase
        side = max(1, min(h, w) // 2)
        cy, cx = draw(h), draw(w)  # the square's centre
        ys = torch.arange(h, device=device)[None, :]
        xs = torch.arange(w, device=device)[None, :]
        inside_y = (ys >= (cy - side // 2)[:, None]) & (ys < (cy - side // 2 + side)[:, None])  # (n, h)
        inside_x = (xs >= (cx - side // 2)[:, None]) & (xs < (cx - side // 2 + side)[:, None])  # (n, w)
        hole = inside_y[:, :, None] & inside_x[:, None, :] & chosen[:, None, None]  # (n, h, w)
        x = x.masked_fill(hole[..., None], 0)
    return x


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) turned about the image centre by ``degrees`` (N,) (counter-clockwise as the image is
    shown, rows downwards): each output pixel takes the bilinear value at its position turned back, 0 outside."""
    n, h, w, _ = x.shape
    t = torch.deg2rad(degrees.float())
    cos, sin = torch.cos(t), torch.sin(t)
    # affine_grid maps output to input positions in [-1, 1] units of each axis; a turn in pixels is a turn
    # in those units only after scaling by the aspect ratio (w/h), so non-square images turn rigidly too
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    planes = x.permute(0, 3, 1, 2).float()
    grid = torch.nn.functional.affine_grid(theta, list(planes.shape), align_corners=False)
    turned = torch.nn.functional.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return turned.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
