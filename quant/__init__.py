"""Quantisation-aware training of the INT8 ResMLP (docs/METHOD.md section 10).

``QResMLP`` is the fake-quantised model whose eval forward is bit-for-bit the integer model
of ``fpga.int_resmlp``; ``quant.qat`` holds what QAT adds to float training (quantising a
float student, the optimiser of the quantiser steps, the integer check and the dump).
``cifar10_quant.py`` runs it through ``training`` (``training.qat``).
"""
from .qat import BITS, Codes, dump, evaluate_codes, normalisation, qat_optimizer, qconfig_of, quantise
from .qresmlp import (LUT_ENTRIES, STATE_FORMAT, QConfig, QResMLP, QuantError, load_state,
                      qrange)

__all__ = ["QConfig", "QResMLP", "QuantError", "load_state", "qrange", "LUT_ENTRIES",
           "STATE_FORMAT", "BITS", "Codes", "dump", "evaluate_codes", "normalisation",
           "qat_optimizer", "qconfig_of", "quantise"]
