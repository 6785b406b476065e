"""Can an explanation be trusted? Three checks of every attribution method on a sample of test images.

- **Deletion** (Petsiuk et al., 2018, "RISE"): the pixels are blacked out in the order the heat map ranks
  them, most important first, in ``steps`` equal shares; the probability of the explained class is read
  after each share. The area under that curve (fraction removed 0..1, trapezoid rule) is low when the map
  found the evidence: the probability falls at once.
- **Insertion**: the reverse, from the image blurred (the Integrated Gradients' blurred baseline) putting
  the pixels back most important first; the area is high when the map found the evidence.
- **Model randomization** (Adebayo et al., 2018, "Sanity Checks for Saliency Maps"): the same method on the
  same image and class with every weight of the model re-drawn from its initializer. Spearman's rank
  correlation of the two maps is the score: a map that barely changes describes the image, not what the
  model learned, and is flagged (mean rho >= ``FLAG_RHO``).

The served model is never touched: the randomized one is a copy.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.compute.modes import evaluating
from cnnlab.errors import InputError
from cnnlab.inspect.attribution import METHODS, _baseline, _probs, check_method, explain
from cnnlab.inspect.capture import model_and_input, own_images
from cnnlab.inspect.health import NEEDS_IMAGES
from cnnlab.shown import Shown, Table

FLAG_RHO = 0.5
STEPS = 20


def _ranks(a: np.ndarray) -> np.ndarray:
    """The rank of each value (0-based), tied values sharing the mean of their ranks."""
    a = a.ravel()
    order = np.argsort(a, kind="stable")
    ordered = a[order]
    first = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, len(a)))
    ranks = np.empty(len(a), np.float64)
    ranks[order] = (starts + (sizes - 1) / 2)[np.cumsum(first) - 1]
    return ranks


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two maps (the Pearson correlation of their ranks, ties sharing their mean rank);
    0 where either map is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def area(curve: np.ndarray) -> float:
    """The area under a curve sampled at equal steps over [0, 1] (trapezoid rule)."""
    curve = np.asarray(curve, np.float64)
    return float((curve[:-1] + curve[1:]).sum() / (2 * (len(curve) - 1)))


@dataclass(frozen=True)
class MethodCheck:
    method: str
    deletion: float  # area under the deletion curve: lower is better
    insertion: float  # area under the insertion curve: higher is better
    randomization_rho: float  # mean rank correlation with the randomized model's map
    deletion_curve: tuple[float, ...]  # mean probability after each share, over the images
    insertion_curve: tuple[float, ...]

    @property
    def flagged(self) -> bool:
        return self.randomization_rho >= FLAG_RHO

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "flagged": self.flagged}


@dataclass(frozen=True, repr=False)
class ExplanationChecks(Shown):
    """Printed: a row per method with its deletion and insertion areas and its randomization score, the
    flagged ones marked; in a notebook the same with the mean curves and the scores (:meth:`plot`)."""

    images: int
    steps: int
    checks: tuple[MethodCheck, ...]

    _figure = "cnnlab.viz.layers:explanation_checks_figure"

    @property
    def flagged(self) -> list[str]:
        return [c.method for c in self.checks if c.flagged]

    def as_dict(self) -> dict:
        return {
            "images": self.images,
            "steps": self.steps,
            "flag_rho": FLAG_RHO,
            "methods": [c.as_dict() for c in self.checks],
        }

    def table(self) -> Table:
        rows = tuple(
            (
                c.method,
                f"{c.deletion:.3f}",
                f"{c.insertion:.3f}",
                f"{c.randomization_rho:.2f}",
                "FLAGGED: barely changes with random weights" if c.flagged else "changes with the weights",
            )
            for c in self.checks
        )
        flagged = self.flagged
        verdict = f"flagged: {', '.join(flagged)}" if flagged else "none flagged"
        title = f"Explanation checks on {self.images} test images ({verdict})"
        lines = (
            "deletion: area under the class probability as the top-ranked pixels are blacked out (lower is better)",
            "insertion: area under it as they are put back into the blurred image (higher is better)",
            f"randomization: rank correlation with the map of the same model with random weights "
            f"(flagged at {FLAG_RHO} or more)",
        )
        return Table(
            title,
            ("method", "deletion", "insertion", "randomization rho", "verdict"),
            rows,
            frozenset({1, 2, 3}),
            lines,
        )


def randomized(run):
    """A copy of ``run`` whose model has every weight re-drawn from its layer's initializer: a cnnlab model
    rebuilt from its spec, any other module copied and each layer's ``reset_parameters()`` called. The run
    given is left as it was."""
    from cnnlab.nn.spec import from_spec

    if hasattr(run.model, "spec"):
        model = from_spec(run.model.spec())
    else:
        model = copy.deepcopy(run.model)
        resettable = [m for m in model.modules() if callable(getattr(m, "reset_parameters", None))]
        if not resettable:
            raise InputError("The model has no layer that can be re-initialized, so it cannot be randomized.")
        for m in resettable:
            m.reset_parameters()
    return dataclasses.replace(run, model=model.eval())


def _curves(model, x: torch.Tensor, start: torch.Tensor, heat: np.ndarray, target: int, steps: int, insert: bool):
    """The class probability with the top-ranked k/steps of the pixels taken from ``start`` (deletion: ``x``
    with them replaced by ``start``; insertion: ``start`` with them taken from ``x``), k = 0..steps."""
    h, w = heat.shape
    order = np.argsort(-heat.ravel(), kind="stable")
    rank = np.empty(h * w, np.int64)
    rank[order] = np.arange(h * w)
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64)
    masks = torch.from_numpy(rank[None, :] < counts[:, None]).view(steps + 1, 1, h, w)
    a, b = (start, x) if insert else (x, start)
    batch = torch.where(masks, b, a)
    with torch.no_grad():
        return _probs(model, batch)[:, target].float().numpy()


def check_explanations(
    run, images=None, methods=None, n: int = 16, steps: int = STEPS, seed: int = 0, progress=None
) -> ExplanationChecks:
    """Deletion, insertion and model randomization (see the module) of each of ``methods`` (default: every
    method) on ``images`` (uint8 NHWC), by default the first ``n`` test images of the run's dataset, each
    explained for the class the model predicts. ``progress(done, total)`` is called after each method."""
    from cnnlab.run.run import Run

    if not isinstance(run, Run):
        raise InputError("check_explanations() needs a Run (its preprocessing says what black is).")
    methods = list(methods or METHODS)
    for m in methods:
        check_method(m)
    if images is None:
        images = own_images(run, "test", n, f"check_explanations() {NEEDS_IMAGES}")
    images = np.asarray(images)
    if images.ndim != 4 or not len(images):
        raise InputError(f"images have shape {images.shape}; expected (N, H, W, C) with N >= 1.")
    if steps < 1:
        raise InputError(f"steps={steps}: expected 1 or more.")
    _, x_all, _, _ = model_and_input(run, images)
    _, black, _, _ = model_and_input(run, np.zeros_like(images[:1]))
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        random_run = randomized(run)
    done = []
    with evaluating(run.model):
        for k, method in enumerate(methods):
            dels, ins, rhos = [], [], []
            for i, image in enumerate(images):
                x = x_all[i : i + 1]
                try:
                    a = explain(run, image, method)
                except InputError:  # a blank image, or a method this model has no layer for
                    continue
                blurred, _ = _baseline(x, "blurred", run)
                dels.append(_curves(run.model, x, black, a.heatmap, a.target, steps, insert=False))
                ins.append(_curves(run.model, x, blurred, a.heatmap, a.target, steps, insert=True))
                r = explain(random_run, image, method, target=a.target)
                rhos.append(rank_correlation(a.heatmap, r.heatmap))
            if dels:
                d, s = np.mean(dels, 0), np.mean(ins, 0)
                done.append(
                    MethodCheck(
                        method, area(d), area(s), float(np.mean(rhos)), tuple(map(float, d)), tuple(map(float, s))
                    )
                )
            if progress is not None:
                progress(k + 1, len(methods))
    if not done:
        raise InputError("No method could explain these images (blank, or a model without spatial layers).")
    return ExplanationChecks(len(images), steps, tuple(done))
