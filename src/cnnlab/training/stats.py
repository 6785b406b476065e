"""Training statistics (``--stats on``, the default): how every layer behaves while the network learns.

About ``POINTS`` times an epoch one training step is watched. Forward hooks on every layer record its
output's mean, standard deviation, range and a histogram of ``BINS`` equal bins over that range, and, for a
layer that ends in a ReLU, the fraction of its outputs that are 0 and which channels gave anything above 0.
After the backward pass each parameter's norm and its gradient's norm are recorded, and after the
optimizer's step the norm of the update relative to the weights (``|w' - w| / |w|``). At the end of each
epoch the channels that never fired in any watched step are listed, with the seconds the recording took
(``recording_seconds``: the hooks and the norms, what ``--stats on`` costs the epoch).

``stats.jsonl`` holds a line a watched step (``"kind": "step"``) and a line an epoch (``"kind": "epoch"``),
and is rewritten whole with each checkpoint (as steps.jsonl is), so a resumed run keeps the lines of its
finished epochs. With ``--nproc`` every rank watches the same steps and the statistics are reduced over the
ranks: each layer's over the whole global batch, as one process computes them; the weights, gradients and
updates are the same on every rank already (DDP averages the gradients). Under ``--compile`` the hooks
would break the compiled graph, so only the weights, gradients and updates are recorded.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch

from cnnlab.nn.activations import ends_in_relu

POINTS = 20  # watched steps an epoch, about
BINS = 20


def _flat(a: torch.Tensor) -> torch.Tensor:
    """``a``'s values as one axis, in memory order: a view of a channels-last map (a convolution's output here),
    where ``reshape(-1)`` would copy it into NCHW order first. The order is no statistic's business."""
    if a.dim() == 4 and not a.is_contiguous() and a.is_contiguous(memory_format=torch.channels_last):
        return a.as_strided((a.numel(),), (1,))
    return a.reshape(-1)


def layer_stats(a: torch.Tensor, relu: bool, world=None) -> dict:
    """The statistics of one layer's output: mean, std (of the population), min, max, a histogram of
    ``BINS`` equal bins from min to max (the last bin closed), and with ``relu`` the fraction of zeros. With
    ``world`` (a :class:`~cnnlab.training.distributed.World` of several ranks) they are those of every rank's
    share of the batch together: the range first (one reduction), then the counts and sums over it (another)."""
    a = _flat(a.detach().float())
    lo, hi = torch.aminmax(a)
    several = world is not None and world.active
    if several:
        lo, hi = world.least(torch.stack([lo, -hi]))
        hi = -hi
    lo, hi = float(lo), float(hi)
    if hi > lo:  # a value's bin, truncated (a - lo >= 0, so truncation is floor); the top value in the last bin
        idx = (a - lo).mul_(BINS / (hi - lo)).clamp_(0, BINS - 1).to(torch.uint8)
        hist = torch.bincount(idx, minlength=BINS)
    else:
        hist = torch.zeros(BINS, dtype=torch.long, device=a.device)
        hist[0] = a.numel()
    n = a.numel()
    mean = a.mean()
    var = a.var(correction=0) if n > 1 else a.new_zeros(())
    # a ReLU's outputs are >= 0, so its zeros are those whose sign is not 1 (a sum 4x faster than of a == 0)
    zeros = torch.sign(a).sum().double().neg_().add_(n) if relu else a.new_zeros(())
    if several:  # each rank's count, sum, sum of squares (from its own accurate mean and variance) and zeros
        m, v = mean.double(), var.double()
        parts = torch.stack([m.new_tensor(n), n * m, n * (v + m * m), zeros.double()])
        sums = world.sum(torch.cat([parts, hist.double()]))
        count, total, squares, zero_count = sums[:4].tolist()
        mean_of_all = total / count
        stats = (mean_of_all, max(squares / count - mean_of_all**2, 0.0) ** 0.5, zero_count / count)
        hist = sums[4:].long()
    else:
        stats = (float(mean), float(var) ** 0.5, float(zeros) / n)
    out = {"mean": stats[0], "std": stats[1], "min": lo, "max": hi, "hist": hist.tolist()}
    if relu:
        out["zeros"] = stats[2]
    return out


def _fired(output: torch.Tensor) -> torch.Tensor:
    """Which channels (axis 1: NCHW, or the units of a Dense) gave anything above 0, a bool tensor on the CPU.
    The max runs down rows of ``k`` channel vectors at once (``k`` the largest power of two up to 64 that divides
    the number of vectors): down a tall (vectors, C) array of a few channels it is ~10x slower on the CPU."""
    c = output.shape[1]
    rows = output.detach().movedim(1, -1).reshape(-1, c)  # a view of a channels_last map
    k = math.gcd(len(rows), 64)
    return (rows.reshape(-1, k * c).amax(0).view(k, c).amax(0) > 0).cpu()


def _layers(net: torch.nn.Module) -> list[tuple[str, torch.nn.Module, bool]]:
    """(name, layer, ends in a ReLU) of every layer: a cnnlab model's own names, else torch's leaf modules."""
    from cnnlab.nn.graph import Model

    if isinstance(net, Model):
        found = net.walk()
    else:
        found = [(n, m) for n, m in net.named_modules() if n and not any(True for _ in m.children())]
    return [(name, m, ends_in_relu(m)) for name, m in found]


class Recorder:
    """What one rank watches of its epochs; its ``records`` are the run's ``stats.jsonl`` lines."""

    def __init__(self, net: torch.nn.Module, records: list[dict], hooks: bool = True, world=None):
        self.net, self.records, self.hooks, self.world = net, records, hooks, world
        self.layers = _layers(net)
        self.fired: dict[str, torch.Tensor] = {}
        self.current: dict = {}
        self.spent = 0.0  # seconds this epoch in the hooks and the norms: what recording costs the run

    @contextlib.contextmanager
    def _timed(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.spent += time.perf_counter() - t0

    @staticmethod
    def every(batches: int) -> int:
        return max(1, batches // POINTS)

    @contextlib.contextmanager
    def watching(self):
        """Forward hooks on every layer for the length of one training step's forward pass."""
        self.current = {"layers": {}}
        handles = []
        if self.hooks:
            for name, module, relu in self.layers:
                handles.append(module.register_forward_hook(self._hook(name, relu)))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def _hook(self, name: str, relu: bool):
        def hook(_module, _inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            with self._timed():
                self.current["layers"][name] = layer_stats(output, relu, self.world)
                if relu and output.dim() >= 2:
                    fired = _fired(output)
                    self.fired[name] = fired if name not in self.fired else self.fired[name] | fired

        return hook

    def _parameters(self):
        for name, module, _ in self.layers:
            for own, p in module.named_parameters(recurse=False):
                if p.requires_grad:
                    yield f"{name}/{own}", p

    def after_backward(self) -> dict[str, torch.Tensor]:
        """The gradient norms, and a copy of the weights to measure the update by."""
        with self._timed():
            self.current["weights"] = {
                name: {"norm": float(p.detach().float().norm()), "grad_norm": float(p.grad.float().norm())}
                for name, p in self._parameters()
                if p.grad is not None
            }
            return {name: p.detach().clone() for name, p in self._parameters()}

    def after_step(self, before: dict[str, torch.Tensor], epoch: int, step: int) -> None:
        with self._timed():
            for name, p in self._parameters():
                if name in before and name in self.current["weights"]:
                    w = before[name].float()
                    size = float(w.norm())
                    change = float((p.detach().float() - w).norm())
                    self.current["weights"][name]["update_ratio"] = change / size if size else 0.0
        self.records.append({"kind": "step", "epoch": epoch, "step": step, **self.current})
        self.current = {}

    def end_epoch(self, epoch: int) -> None:
        if self.world is not None and self.world.active:  # a channel fired if it fired on any rank
            device = next(self.net.parameters()).device  # nccl reduces only tensors on the GPU
            self.fired = {name: (self.world.sum(f.long().to(device)) > 0).cpu() for name, f in self.fired.items()}
        never = {name: torch.nonzero(~f).flatten().tolist() for name, f in self.fired.items()}
        channels = {name: len(f) for name, f in self.fired.items()}
        spent = round(self.spent, 4)
        self.records.append(
            {"kind": "epoch", "epoch": epoch, "never_fired": never, "channels": channels, "recording_seconds": spent}
        )
        self.fired, self.spent = {}, 0.0


def bucket_edges(stats: dict) -> list[float]:
    """The ``BINS + 1`` edges of one recorded histogram: equal bins from its min to its max."""
    lo, hi = stats["min"], stats["max"]
    return [lo + (hi - lo) * i / len(stats["hist"]) for i in range(len(stats["hist"]) + 1)]


def histograms_over_time(lines: list[dict], layer: str, bins: int = BINS):
    """One layer's recorded histograms on a common axis, for a heat map: (the watched steps, the ``bins + 1``
    edges from the lowest min to the highest max, a (steps, bins) array of each step's share of outputs in
    each bin). A recorded bin's count is spread over the common bins it overlaps, in proportion (as if its
    values were uniform within it); a histogram of one value puts it all in that value's bin."""
    import numpy as np

    points = [
        (r["step"], r["layers"][layer]) for r in lines if r.get("kind") == "step" and layer in r.get("layers", {})
    ]
    if not points:
        return [], np.zeros(bins + 1), np.zeros((0, bins))
    lo = min(p["min"] for _, p in points)
    hi = max(p["max"] for _, p in points)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    shares = np.zeros((len(points), bins))
    for row, (_, p) in enumerate(points):
        counts = np.asarray(p["hist"], np.float64)
        total = counts.sum()
        if total <= 0:
            continue
        if p["max"] <= p["min"]:
            shares[row, min(int((p["min"] - lo) / (hi - lo) * bins), bins - 1)] = 1.0
            continue
        src = np.asarray(bucket_edges(p))
        overlap = np.clip(
            np.minimum(src[1:, None], edges[None, 1:]) - np.maximum(src[:-1, None], edges[None, :-1]), 0, None
        )  # (recorded bins, common bins)
        shares[row] = (counts[:, None] * overlap / (src[1:] - src[:-1])[:, None]).sum(0) / total
    return [s for s, _ in points], edges, shares
