"""ResMLP models and checkpoint helpers (see ``resmlp.py`` and ``checkpoint.py``)."""
from .checkpoint import (CheckpointError, atomic_torch_save, build_from_checkpoint,
                         describe_checkpoint, export_authors_state_dict, load_checkpoint,
                         read_state_dict, save_checkpoint)
from .resmlp import (ACT_ALIASES, MLP_FACTORIES, ResMLP, UnknownActivationError, build_resmlp,
                     canonical_act, hidden_size)

__all__ = ["ResMLP", "build_resmlp", "canonical_act", "hidden_size", "ACT_ALIASES",
           "MLP_FACTORIES", "UnknownActivationError", "CheckpointError", "load_checkpoint",
           "save_checkpoint", "export_authors_state_dict", "describe_checkpoint",
           "read_state_dict", "build_from_checkpoint", "atomic_torch_save"]
