"""A run's model as a file other tools read: Keras 3 (``.keras``) or ONNX.

Both take what cnnlab feeds the model: float NHWC images in [0, 1] (uint8 / 255), and both end in the
softmax, so their output is the probabilities that ``Run.predict`` returns (a Keras file of a model that
ends in logits gets a last ``Softmax`` layer named ``probabilities``).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch

from cnnlab.atomic import write_bytes
from cnnlab.compute.outputs import ends_in_softmax, probabilities
from cnnlab.compute.quiet import quiet_loggers
from cnnlab.errors import InputError

FORMATS = ("keras", "onnx")


class _Probabilities(torch.nn.Module):
    """NHWC float images in [0, 1] -> class probabilities, as ``Run.predict`` computes them."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.softmaxed = ends_in_softmax(model)

    def forward(self, images):
        out = self.model(images.permute(0, 3, 1, 2))
        return probabilities(out, self.softmaxed)


@contextlib.contextmanager
def _quiet_exporter():
    """torch.onnx's notes to its own developers (torchvision ops it skips, deprecations inside torch) are not
    the user's business: hidden while exporting, the logger's level and the warning filters restored after."""
    with quiet_loggers("torch.onnx"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def write_onnx(run, path) -> tuple[Path, int]:
    """``run`` as an ONNX model (input ``images``: float32 (N, H, W, C) in [0, 1], any N; output
    ``probabilities``: (N, classes)), written atomically; returns (path, opset)."""
    try:
        import onnx
    except ImportError:
        raise InputError("ONNX export needs the onnx and onnxscript packages: pip install 'cnnlab[onnx]'") from None
    from cnnlab.compute.modes import evaluating

    model = _Probabilities(run.model).eval()
    example = torch.rand(2, *run.input_shape)
    with evaluating(run.model), torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=["images"],
            output_names=["probabilities"],
            dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
            verbose=False,
        )
    proto = program.model_proto
    h, w, c = run.input_shape
    proto.doc_string = (
        f"cnnlab model {getattr(run.model, 'name', 'model')}: input 'images' float32 (N, {h}, {w}, {c}) NHWC in "
        f"[0, 1] (uint8 pixels / 255); output 'probabilities' (N, {len(run.classes)}): {', '.join(run.classes)}"
    )
    entry = proto.metadata_props.add()
    entry.key, entry.value = "classes", "\n".join(run.classes)
    buf = io.BytesIO()
    onnx.save_model(proto, buf)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return write_bytes(path, buf.getvalue()), opset


def export(run, path, format: str = "keras") -> str:
    """Write ``run`` in ``format`` to ``path``; a line saying what was written."""
    if format not in FORMATS:
        raise InputError(f"Unknown format {format!r}. Expected one of: {', '.join(FORMATS)}.")
    h, w, c = run.input_shape
    takes = f"it takes float32 images (N, {h}, {w}, {c}) in [0, 1]"
    if format == "keras":
        from cnnlab.nn.keras_write import write_keras

        path = write_keras(run.model, path)
        return f"wrote {path} ({path.stat().st_size:,} bytes), Keras 3; {takes}, outputs probabilities"
    path, opset = write_onnx(run, path)
    return f"wrote {path} ({path.stat().st_size:,} bytes), ONNX opset {opset}; {takes}, outputs probabilities"
