"""Shipping a compressed model to a standard runtime: ONNX export (ONNX Runtime, OpenVINO,
TensorRT read it), with int8 layers as QDQ pairs over int8 weights.

Example::

    from autocompress.runtime import export_onnx
    export_onnx(compress(model, policy, form="deploy", example_input=x), "model.onnx", x)
"""

from autocompress.runtime._onnx import drop_relus_of_nonnegative, export_onnx, fold_weight_quantizers, onnx_form
from autocompress.runtime._ort import OrtModel

__all__ = ["OrtModel", "drop_relus_of_nonnegative", "export_onnx", "fold_weight_quantizers", "onnx_form"]
