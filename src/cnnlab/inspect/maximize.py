"""Activation maximization: an input that makes one channel of one layer fire as strongly as it can.

Regularized gradient ascent from a gray image: each step shifts the image by a few pixels
at random (jitter) so the pattern cannot rely on exact positions, a gentle L2 decay keeps
pixels from running off, and every few steps a small Gaussian blur removes the high-frequency
noise that plain ascent produces. Without the three, a small grayscale model yields static.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.compute.modes import evaluating
from cnnlab.errors import InputError
from cnnlab.inspect.capture import forward_capturing, select


@dataclass(frozen=True)
class Maximized:
    layer: str
    channel: int
    image: np.ndarray  # (H, W, C) in [0, 1]
    activation: float  # the channel's mean activation for that image
    start_activation: float  # ... and for the gray start
    note: str = ""  # what a person should know: a channel that never fires from any start is dead


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(round(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(
        F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c
    )


def maximize(
    model,
    input_shape,
    layer: str,
    channel: int,
    steps: int = 160,
    lr: float = 0.05,
    jitter: int = 2,
    blur_every: int = 4,
    blur_sigma: float = 0.6,
    decay: float = 1e-3,
    seed: int = 0,
) -> Maximized:
    """Gradient ascent on the mean activation of ``channel`` in ``layer``; ``input_shape`` is (H, W, C).

    A ReLU channel that is 0 for the gray start gives no gradient to climb: the ascent is tried again
    from noisier starts (``STARTS`` in all), and if the channel stays at 0 from every one, the result
    says it is dead for these starts instead of showing a flat image as if it meant something."""
    ((name, _),) = select(model, layer)
    best = None
    for attempt, noise in enumerate(STARTS):
        m = _ascend(
            model, name, input_shape, channel, steps, lr, jitter, blur_every, blur_sigma, decay, seed + attempt, noise
        )
        if best is None or m.activation > best.activation:
            best = m
        if m.activation != m.start_activation or m.activation != 0:
            return m
    tried = ", ".join(f"{n:g}" for n in STARTS)
    note = (
        f"channel {channel} of '{name}' stays at {best.activation:g} from {len(STARTS)} starts (gray with noise "
        f"{tried}): it does not fire for any of them, a dead unit for these inputs"
    )
    return Maximized(best.layer, best.channel, best.image, best.activation, best.start_activation, note)


STARTS = (0.01, 0.25, 0.5)  # the noise around gray of each start; the first is nearly plain gray


def _ascend(model, name, input_shape, channel, steps, lr, jitter, blur_every, blur_sigma, decay, seed, noise):
    h, w, c = input_shape
    g = torch.Generator().manual_seed(seed)
    x = (0.5 + noise * torch.randn((1, c, h, w), generator=g)).clamp(0, 1).requires_grad_(True)

    def objective(img):
        _, out = forward_capturing(model, img, [name], keep_graph=True)
        a = out[name]
        if a.dim() == 4:
            if not 0 <= channel < a.shape[1]:
                raise InputError(
                    f"Layer '{name}' has {a.shape[1]} channels; channel {channel} does not exist "
                    f"(expected 0..{a.shape[1] - 1})."
                )
            return a[:, channel].mean()
        if not 0 <= channel < a.shape[1]:
            raise InputError(f"Layer '{name}' has {a.shape[1]} units; unit {channel} does not exist.")
        return a[:, channel].mean()

    # The gradient is taken for the image alone (autograd.grad, not backward()): the model's parameters
    # get no .grad and their requires_grad is never touched, so a shared model is left exactly as it was.
    with evaluating(model):
        with torch.no_grad():
            start = float(objective(x))
        opt = torch.optim.Adam([x], lr=lr)
        for step in range(steps):
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g))
            shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            loss = -objective(shifted) + decay * (x - 0.5).pow(2).sum()
            (x.grad,) = torch.autograd.grad(loss, [x])
            opt.step()
            with torch.no_grad():
                if blur_every and step % blur_every == 0:
                    x.copy_(_blur(x, blur_sigma))
                x.clamp_(0, 1)
        with torch.no_grad():
            final = float(objective(x))
    return Maximized(name, channel, x.detach()[0].permute(1, 2, 0).numpy(), final, start)
