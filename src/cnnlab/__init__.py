"""cnnlab: a workbench for convolutional neural networks.

``cnnlab.arith`` computes convolution and pooling exactly as TensorFlow does, in
NumPy, and explains every cell; ``cnnlab.nn.functional`` runs the same ops on
PyTorch tensors.
"""

from cnnlab import arith, errors

__version__ = "0.1.0"
__all__ = ["arith", "errors", "__version__"]
