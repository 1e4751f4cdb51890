"""Kernel backends. Each module exports the same plain launchers (tensors in,
tensors out, no autograd): ``lerp_forward``/``lerp_backward``,
``bspline_forward``/``bspline_backward`` and ``psa_table_forward``/
``psa_table_backward``; ``kernels.registry`` lists them as data and
``kernels.ops`` wraps them in ``torch.library`` custom operators."""
