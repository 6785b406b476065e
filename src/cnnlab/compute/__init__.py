"""Where and how tensors are computed: device and precision (``device``), NumPy images into model input
(``tensors``), a model's train/eval mode restored (``modes``), torch's loggers quieted (``quiet``)."""
