"""Export a model's activation sublayers as 8-bit lookup tables (docs/METHOD.md section 9).

For every activation sublayer g (LERP-PSA: ``x + LerpPSA(x)``; B-spline; ReLU)
the input scale ``s_in`` and output scale ``s_out`` are the abs-max over
calibration batches divided by 127, and each feature's table holds

    entry k = clamp(round(g((k * 2^L - 128) * s_in) / s_out), -128, 127),  k = 0..2^M

(round half to even). Per layer this writes ``<layer>.hex`` ($readmemh,
feature-major, one two's-complement byte per line, 2^M + 1 lines per
feature), ``<layer>.inputs.hex`` (calibration inputs quantised to codes, in
stream order: element n belongs to feature n mod F) and one ``manifest.json``.

  python -m fpga.export --checkpoint output/.../lerp_psa_64/h_div_4_model.bin --act psa \\
      --hidden-factor 0.25 --dataset fashion-mnist --out fpga/build/export
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
import torch
from torch import nn

from errors import write_atomic

from .lerp8 import check_addr_bits, table_codes, write_hex


def activation_sublayers(model) -> Dict[str, nn.Module]:
    """Name -> module of every activation sublayer, in forward order (the sublayer class is
    the activation's description in ``models.registry``)."""
    from models import UnknownActivationError, activation
    act = getattr(model, "act", None)
    try:
        kind = activation(act).sublayer
    except UnknownActivationError:
        raise ValueError(f"cannot export activations of a model with act={act!r}") from None
    return {name: m for name, m in model.named_modules() if isinstance(m, kind)}


def feature_count(module, sample_in) -> int:
    return int(getattr(module, "num_features", sample_in.shape[-1]))


@dataclass
class Calibration:
    absmax_in: float = 0.0
    absmax_out: float = 0.0
    inputs: List[torch.Tensor] = field(default_factory=list)
    kept: int = 0


@torch.no_grad()
def calibrate(model, loader, batches: int, device, keep_inputs: int = 0) -> Dict[str, Calibration]:
    """Run ``batches`` batches in eval mode and record, per activation
    sublayer, the input/output abs-max and the first ``keep_inputs`` input
    values (whole rows, stream order)."""
    model.eval()
    subs = activation_sublayers(model)
    stats = {name: Calibration() for name in subs}
    hooks = []
    for name, mod in subs.items():
        def hook(m, inp, out, name=name):
            x = inp[0].detach()
            s = stats[name]
            s.absmax_in = max(s.absmax_in, float(x.abs().max()))
            s.absmax_out = max(s.absmax_out, float(out.detach().abs().max()))
            if s.kept < keep_inputs:
                rows = x.reshape(-1, x.shape[-1]).cpu()
                need = -(-(keep_inputs - s.kept) // rows.shape[1])
                s.inputs.append(rows[:need])
                s.kept += rows[:need].numel()
        hooks.append(mod.register_forward_hook(hook))
    try:
        for i, (x, _) in enumerate(loader):
            if i >= batches:
                break
            model(x.to(device))
    finally:
        for h in hooks:
            h.remove()
    return stats


def scales(cal: Calibration):
    s_in = (cal.absmax_in or 1.0) / 127.0
    s_out = (cal.absmax_out or 1.0) / 127.0
    return s_in, s_out


@torch.no_grad()
def tabulate(module, num_features: int, s_in: float, s_out: float, m: int, device="cpu") -> np.ndarray:
    """int8 table (F, 2^M + 1) of ``module`` at the table codes."""
    codes = torch.tensor(table_codes(m), dtype=torch.float32, device=device)
    x = (codes * s_in).unsqueeze(1).expand(-1, num_features).contiguous()
    module.eval()
    y = module(x)
    q = torch.clamp(torch.round(y / s_out), -128, 127)
    return q.t().cpu().numpy().astype(np.int8)


def quantize(x: torch.Tensor, s: float) -> torch.Tensor:
    return torch.clamp(torch.round(x / s), -128, 127)


def export_model(model, loader, out_dir: str, m: int, calib_batches: int = 8,
                 dump_inputs: int = 10000, source: str = "", device="cpu", log=print):
    """Calibrate, tabulate and write every activation sublayer; returns the manifest."""
    check_addr_bits(m)
    os.makedirs(out_dir, exist_ok=True)
    stats = calibrate(model, loader, calib_batches, device, keep_inputs=dump_inputs)
    layers = []
    for name, mod in activation_sublayers(model).items():
        cal = stats[name]
        if not cal.inputs:
            raise RuntimeError(f"layer {name} saw no calibration data")
        F = cal.inputs[0].shape[1]
        s_in, s_out = scales(cal)
        table = tabulate(mod, F, s_in, s_out, m, device)
        stem = name.replace(".", "_")
        write_hex(os.path.join(out_dir, f"{stem}.hex"), table)
        codes = quantize(torch.cat(cal.inputs).reshape(-1)[:dump_inputs], s_in)
        write_hex(os.path.join(out_dir, f"{stem}.inputs.hex"), codes.numpy().astype(np.int64))
        layers.append(dict(name=name, tables=f"{stem}.hex", inputs=f"{stem}.inputs.hex",
                           features=F, addr_bits=m, entries_per_feature=(1 << m) + 1,
                           s_in=s_in, s_out=s_out, n_inputs=int(codes.numel())))
        log(f"{name}: F={F} s_in={s_in:.5g} s_out={s_out:.5g} -> {stem}.hex")
    manifest = dict(source_checkpoint=source, act=getattr(model, "act", None),
                    hidden_factor=getattr(model, "hidden_factor", None), addr_bits=m,
                    calibration_batches=calib_batches, layers=layers)
    write_atomic(os.path.join(out_dir, "manifest.json"), lambda f: json.dump(manifest, f, indent=2))
    return manifest


# --- command line -----------------------------------------------------------------------------

def add_model_args(p):
    p.add_argument("--checkpoint", help="model checkpoint; the file defines the model (omit: a "
                   "freshly built model, --seed)")
    p.add_argument("--act", default=None, help="activation: base, bspline, psa (with --checkpoint: "
                   "read from the file and only checked; without: default psa)")
    p.add_argument("--hidden-factor", type=float, default=None,
                   help="hidden factor h (with --checkpoint: read from the file and only checked; "
                   "without: default 1)")
    p.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "synthetic", "cifar10"))
    p.add_argument("--dataset-dir", default=None)
    p.add_argument("--addr-bits", "-M", type=int, default=6, help="table address bits M (6)")
    p.add_argument("--calib-batches", type=int, default=8, help="calibration batches (8)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=2023)


def model_act_and_h(model):
    """(activation, hidden factor) of a built ResMLP, for the printed summary."""
    from models import describe_model
    info = describe_model(model)
    return info["act"], info["hidden_factor"]


def load_model_and_data(args, train_split=True):
    """(model, calibration loader, test loader) from the shared arguments."""
    import data
    from models import CheckpointError, build_from_checkpoint, build_resmlp, canonical_act
    torch.manual_seed(args.seed)
    train, test, info = data.get_datasets(args.dataset, args.dataset_dir, augment=False)
    if args.checkpoint:
        # The file defines the model; --act/--hidden-factor, when given, are checked against it.
        model = build_from_checkpoint(args.checkpoint, resnet=False, in_channels=info["in_channels"],
                                      num_classes=info["num_classes"])
        act, h = model_act_and_h(model)
        if args.act is not None and canonical_act(args.act) != act:
            raise CheckpointError(f"{args.checkpoint} holds a {act} model, not {args.act}; "
                                  f"drop --act or pass --act {act}")
        if args.hidden_factor is not None and float(args.hidden_factor) != h:
            raise CheckpointError(f"{args.checkpoint} holds hidden factor {h:g}, not "
                                  f"{args.hidden_factor:g}; drop --hidden-factor or pass "
                                  f"--hidden-factor {h:g}")
        args.act, args.hidden_factor = act, h
    else:
        args.act = canonical_act(args.act or "psa")
        args.hidden_factor = 1.0 if args.hidden_factor is None else args.hidden_factor
        model = build_resmlp(args.act, args.hidden_factor, in_channels=info["in_channels"],
                             num_classes=info["num_classes"])
    g = torch.Generator().manual_seed(args.seed)
    calib = torch.utils.data.DataLoader(train if train_split else test, batch_size=args.batch_size,
                                        shuffle=True, generator=g)
    test_loader = torch.utils.data.DataLoader(test, batch_size=args.batch_size)
    return model.eval(), calib, test_loader


def main(argv=None):
    from errors import UserError, report
    p = argparse.ArgumentParser(prog="python -m fpga.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--out", default="fpga/build/export", help="output folder (fpga/build/export)")
    p.add_argument("--dump-inputs", type=int, default=10000,
                   help="calibration inputs per layer written as codes (10000)")
    args = p.parse_args(argv)
    try:
        check_addr_bits(args.addr_bits)
        model, calib, _ = load_model_and_data(args)
        export_model(model, calib, args.out, args.addr_bits, args.calib_batches, args.dump_inputs,
                     source=os.path.abspath(args.checkpoint) if args.checkpoint else "(freshly built)")
    except (UserError, ValueError) as exc:
        return report("python -m fpga.export", exc)
    print(f"wrote {args.out}/manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
