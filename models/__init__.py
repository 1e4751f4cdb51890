"""The models: the paper's ResMLP (``resmlp.py``), the ResNet-20 teacher (``resnet.py``),
checkpoint I/O that rebuilds either from a file alone (``checkpoint.py``) and the table of
activations every part of the code reads (``registry.py``)."""
from .checkpoint import (CheckpointError, atomic_torch_save, build_from_checkpoint,
                         check_compatible, checkpoint_filter_fn, describe_checkpoint,
                         describe_model, export_authors_state_dict, load_checkpoint,
                         read_state_dict, save_checkpoint)
from .registry import (ACTIVATIONS, Activation, ModelConfigError, UnknownActivationError,
                       activation, activation_of, canonical_act)
from .resmlp import ResMLP, build_resmlp, hidden_size
from .resnet import ResNet20, build_resnet20

__all__ = ["ResMLP", "build_resmlp", "canonical_act", "hidden_size", "ACTIVATIONS", "Activation", "activation", "activation_of",
           "UnknownActivationError", "ModelConfigError", "ResNet20",
           "build_resnet20", "CheckpointError", "load_checkpoint", "save_checkpoint",
           "export_authors_state_dict", "describe_checkpoint", "describe_model",
           "check_compatible", "checkpoint_filter_fn", "read_state_dict",
           "build_from_checkpoint", "atomic_torch_save"]
