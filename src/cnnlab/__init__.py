"""cnnlab: a workbench for convolutional neural networks.

``cnnlab.arith`` computes convolution and pooling exactly as TensorFlow does and
explains every cell; ``cnnlab.data`` loads verified datasets as NumPy arrays;
``cnnlab.nn`` builds CNNs from Keras's vocabulary on PyTorch; ``cnnlab.train(...)``
(:mod:`cnnlab.training`) trains them into run directories, and ``cnnlab.load(path)`` (:mod:`cnnlab.run`)
brings one back, or a Keras file.
"""

__version__ = "0.1.0"

import importlib

from cnnlab import arith, data, errors

_LAZY = {
    "nn": ("cnnlab.nn", None),
    "train": ("cnnlab.training.loop", "train"),
    "training": ("cnnlab.training", None),
    "run": ("cnnlab.run", None),
    "inspect": ("cnnlab.inspect", None),
    "Run": ("cnnlab.run.run", "Run"),
    "load": ("cnnlab.run.run", "load"),
    "evaluate": ("cnnlab.run.evaluate", "evaluate"),
    "export": ("cnnlab.run.export", "export"),
}


def __getattr__(name):
    """The torch-backed parts load on first use, so arithmetic and data stay light to import."""
    if name not in _LAZY:
        raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


__all__ = [
    "Run",
    "arith",
    "data",
    "errors",
    "evaluate",
    "export",
    "inspect",
    "load",
    "nn",
    "run",
    "train",
    "training",
    "__version__",
]
