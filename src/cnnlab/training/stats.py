"""Training statistics (``--stats on``, the default): how every layer behaves while the network learns.

About ``POINTS`` times an epoch one training step is watched. Forward hooks on every layer record its
output's mean, standard deviation, range and a histogram of ``BINS`` equal bins over that range, and, for a
layer that ends in a ReLU, the fraction of its outputs that are 0 and which channels gave anything above 0.
After the backward pass each parameter's norm and its gradient's norm are recorded, and after the
optimizer's step the norm of the update relative to the weights (``|w' - w| / |w|``). At the end of each
epoch the channels that never fired in any watched step are listed.

``stats.jsonl`` holds a line a watched step (``"kind": "step"``) and a line an epoch (``"kind": "epoch"``),
and is rewritten whole with each checkpoint (as steps.jsonl is), so a resumed run keeps the lines of its
finished epochs. With ``--nproc`` the watched step is rank 0's share of the batch (the statistics of a
shard; the other ranks' are not sent). Under ``--compile`` the hooks would break the compiled graph, so only
the weights, gradients and updates are recorded.
"""

from __future__ import annotations

import contextlib

import torch

from cnnlab.nn.activations import ends_in_relu

POINTS = 20  # watched steps an epoch, about
BINS = 20


def layer_stats(a: torch.Tensor, relu: bool) -> dict:
    """The statistics of one layer's output: mean, std (of the population), min, max, a histogram of
    ``BINS`` equal bins from min to max (the last bin closed), and with ``relu`` the fraction of zeros."""
    a = a.detach().float().reshape(-1)
    lo, hi = float(a.min()), float(a.max())
    if hi > lo:
        idx = ((a - lo) * (BINS / (hi - lo))).floor().clamp_(0, BINS - 1).long()
        hist = torch.bincount(idx, minlength=BINS)
    else:
        hist = torch.zeros(BINS, dtype=torch.long)
        hist[0] = a.numel()
    out = {
        "mean": float(a.mean()),
        "std": float(a.std(unbiased=False)) if a.numel() > 1 else 0.0,
        "min": lo,
        "max": hi,
        "hist": hist.tolist(),
    }
    if relu:
        out["zeros"] = float((a == 0).float().mean())
    return out


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

    def __init__(self, net: torch.nn.Module, records: list[dict], hooks: bool = True):
        self.net, self.records, self.hooks = net, records, hooks
        self.layers = _layers(net)
        self.fired: dict[str, torch.Tensor] = {}
        self.current: dict = {}

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
            self.current["layers"][name] = layer_stats(output, relu)
            if relu and output.dim() >= 2:  # channels are axis 1 (NCHW, or units of a Dense)
                fired = (output.detach() > 0).transpose(0, 1).reshape(output.shape[1], -1).any(dim=1).cpu()
                self.fired[name] = fired if name not in self.fired else self.fired[name] | fired

        return hook

    def _parameters(self):
        for name, module, _ in self.layers:
            for own, p in module.named_parameters(recurse=False):
                if p.requires_grad:
                    yield f"{name}/{own}", p

    def after_backward(self) -> dict[str, torch.Tensor]:
        """The gradient norms, and a copy of the weights to measure the update by."""
        self.current["weights"] = {
            name: {"norm": float(p.detach().float().norm()), "grad_norm": float(p.grad.float().norm())}
            for name, p in self._parameters()
            if p.grad is not None
        }
        return {name: p.detach().clone() for name, p in self._parameters()}

    def after_step(self, before: dict[str, torch.Tensor], epoch: int, step: int) -> None:
        for name, p in self._parameters():
            if name in before and name in self.current["weights"]:
                w = before[name].float()
                size = float(w.norm())
                change = float((p.detach().float() - w).norm())
                self.current["weights"][name]["update_ratio"] = change / size if size else 0.0
        self.records.append({"kind": "step", "epoch": epoch, "step": step, **self.current})
        self.current = {}

    def end_epoch(self, epoch: int) -> None:
        never = {name: torch.nonzero(~f).flatten().tolist() for name, f in self.fired.items()}
        channels = {name: len(f) for name, f in self.fired.items()}
        self.records.append({"kind": "epoch", "epoch": epoch, "never_fired": never, "channels": channels})
        self.fired = {}


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
