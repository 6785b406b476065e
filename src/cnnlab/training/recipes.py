"""Recipes: named sets of training options (model, epochs, batch size, schedule...) per dataset.

``cnnlab train --recipe NAME --data mnist`` starts from the recipe's options for that dataset; any option
given explicitly wins. The options used are printed at the start and saved in config.json like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.errors import InputError


@dataclass(frozen=True)
class Recipe:
    name: str
    about: str
    options: dict[str, dict]  # dataset name -> TrainConfig options


RECIPES = {
    r.name: r
    for r in (
        Recipe(
            "gpu-speed",
            "the speed run for one GPU, to 99% on MNIST: cnnlab-fast, batches of 64, 3 epochs of cosine decay",
            # Chosen on 2-core CPUs (whole test set after the last epoch, seeds 0/1/2). With bf16 autocast:
            # batch 128, lr 1e-3, 3 epochs: 0.9903/0.9904/0.9911; batch 64: 0.9916/0.9917/0.9926. In fp32 (a
            # CPU without native bf16, where "auto" is fp32) batch 128 gave 0.9895 for seed 0, under 99%, and
            # batch 64 0.9912/0.9921/0.9916, so batch 64 it is. Batch 256 (lr 1e-3 to 3e-3) stayed at
            # 0.984-0.989 after 2-3 epochs. Not yet timed on a GPU.
            {
                "mnist": {
                    "model": "cnnlab-fast",
                    "epochs": 3,
                    "batch_size": 64,
                    "lr": 1e-3,
                    "lr_schedule": "cosine",
                },
            },
        ),
        Recipe(
            "fast",
            "the most accurate in about 3 seed-fashion epochs on a 2-core CPU: cnnlab-fast, 3 epochs of one-cycle",
            # Seed 0 on this 2-core CPU, cnnlab-fast, batch 64 (MNIST / Fashion-MNIST test accuracy): 3 epochs of
            # cosine from 1e-3 0.9910 / 0.9149; 3 of one-cycle to 3e-3 0.9934 / 0.9191; 5 of cosine
            # 0.9925 / 0.9220; 5 of one-cycle 0.9938 / 0.9263.
            {
                data: {"model": "cnnlab-fast", "epochs": 3, "batch_size": 64, "lr": 3e-3, "lr_schedule": "onecycle"}
                for data in ("mnist", "fashion-mnist")
            },
        ),
        Recipe(
            "best",
            "the most accurate within 40 seed-fashion epochs on a 2-core CPU: cnnlab-fast, 30 epochs of "
            "one-cycle, shifts (and mirrors for clothes), label smoothing",
            # Fashion-MNIST on this 2-core CPU, seed 0, 30 epochs: cosine from 1e-3 with shift=2,flip 0.9314;
            # adding erase=0.5 and ema=0.999 0.9288; shift=1,flip 0.9357; one-cycle to 3e-3 0.9375. A wider BN
            # model, 20 epochs, 0.9336. MNIST, seed 0: cosine with shift=1 0.9957 (shift=2 0.9956), one-cycle 0.9968.
            {
                "fashion-mnist": {
                    "model": "cnnlab-fast",
                    "epochs": 30,
                    "batch_size": 64,
                    "lr": 3e-3,
                    "lr_schedule": "onecycle",
                    "augment": "shift=1,flip",
                    "label_smoothing": 0.1,
                },
                # MNIST: the same without mirrors (a mirrored digit is another digit or none).
                "mnist": {
                    "model": "cnnlab-fast",
                    "epochs": 30,
                    "batch_size": 64,
                    "lr": 3e-3,
                    "lr_schedule": "onecycle",
                    "augment": "shift=1",
                    "label_smoothing": 0.1,
                },
            },
        ),
        Recipe(
            "res",
            "a residual network in best's budget: cnnlab-res, 10 epochs of one-cycle, best's augmentation and "
            "label smoothing",
            # Seed 0 on this 2-core CPU: 10 epochs 0.9370 on Fashion-MNIST, 0.9966 on MNIST (20-25 s an epoch:
            # 10 fit the 40 seed-fashion epochs of best's budget, 249 s when best was measured).
            {
                data: {
                    "model": "cnnlab-res",
                    "epochs": 10,
                    "batch_size": 64,
                    "lr": 3e-3,
                    "lr_schedule": "onecycle",
                    "augment": augment,
                    "label_smoothing": 0.1,
                }
                for data, augment in (("fashion-mnist", "shift=1,flip"), ("mnist", "shift=1"))
            },
        ),
    )
}


def expand(options: dict) -> tuple[dict, str | None]:
    """``options`` with its ``recipe`` (if any) filled in: the recipe's options for the dataset under the
    explicit ones, and a line that says what the recipe chose."""
    name = options.get("recipe")
    if not name:
        return options, None
    recipe = RECIPES.get(name)
    if recipe is None:
        raise InputError(f"Unknown recipe {name!r}. Expected one of: {', '.join(RECIPES)}.")
    data = str(options.get("data") or "mnist")
    chosen = recipe.options.get(data)
    if chosen is None:
        raise InputError(f"Recipe {name!r} has no options for data {data!r}. It has: {', '.join(recipe.options)}.")
    used = {**chosen, **{k: v for k, v in options.items() if v is not None}}
    kept = {k: used[k] for k in chosen}
    overridden = sorted(k for k in chosen if k in options and options[k] != chosen[k])
    line = f"recipe {name} for {data}: " + ", ".join(f"{k}={v}" for k, v in kept.items())
    if overridden:
        line += f" ({', '.join(overridden)} given explicitly)"
    return used, line
