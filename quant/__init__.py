"""Quantisation-aware training of the INT8 ResMLP (docs/METHOD.md section 10).

``QResMLP`` is the fake-quantised model whose eval forward is bit-for-bit the integer model
of ``fpga.int_resmlp``; ``cifar10_quant.py`` trains it and dumps the integer parameters.
"""
from .qresmlp import (LUT_ENTRIES, STATE_FORMAT, QConfig, QResMLP, QuantError, load_state,
                      qrange)

__all__ = ["QConfig", "QResMLP", "QuantError", "load_state", "qrange",
           "LUT_ENTRIES", "STATE_FORMAT"]
