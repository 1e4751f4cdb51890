"""Deployment outside PyTorch: ONNX graphs of our models built from standard operators.

* ``onnx_export.py``: the graph of a ResMLP (ReLU, B-spline or LERP-PSA) or a ResNet-20,
  written node by node with ``onnx.helper`` (no tracing, no custom domain);
* ``onnx_int8.py``: the integer INT8 model of ``fpga.int_resmlp`` as a graph of integer
  operators, bit for bit the integer model's logits in onnxruntime;
* ``onnx_check.py``: the exported graph run in onnxruntime beside the PyTorch model.

The command-line tools are ``scripts/export_onnx.py`` and ``scripts/bench_onnx.py``; the
user's guide is docs/DEPLOY.md. ``onnx`` and ``onnxruntime`` come from
requirements-deploy.txt and are imported only when a function here needs them.
"""
