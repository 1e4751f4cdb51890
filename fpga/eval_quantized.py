"""Float vs 8-bit-table accuracy of a ResMLP checkpoint.

Every activation sublayer (LERP-PSA ``x + LerpPSA(x)``, B-spline or ReLU) is
replaced by the exported 8-bit table arithmetic of docs/METHOD.md section 9: the input
is quantised to the layer's input scale, evaluated bit-exactly as the Verilog
unit does, and dequantised with the output scale. Everything else stays float.

  python -m fpga.eval_quantized --checkpoint output/.../lerp_psa_64/h_div_4_model.bin \\
      --act psa --hidden-factor 0.25 --dataset fashion-mnist
"""
from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from .export import activation_sublayers, add_model_args, calibrate, scales, tabulate
from .lerp8 import check_addr_bits


class QuantizedTableActivation(nn.Module):
    """``x -> s_out * lerp8(clamp(round(x / s_in)), table)`` with the integer
    arithmetic of ``fpga.lerp8`` (vectorised in torch, bit-identical)."""

    def __init__(self, table, s_in: float, s_out: float, m: int):
        super().__init__()
        self.m = check_addr_bits(m)
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.int64))
        self.s_in, self.s_out = float(s_in), float(s_out)

    def codes(self, x):
        return torch.clamp(torch.round(x / self.s_in), -128, 127).to(torch.int64)

    def forward_codes(self, codes):
        L = 8 - self.m
        F_ = self.table.shape[0]
        idx = codes + 128
        hi, lo = idx >> L, idx & ((1 << L) - 1)
        feat = torch.arange(F_, device=codes.device).expand_as(codes)
        y0 = self.table[feat, hi]
        y1 = self.table[feat, hi + 1]
        return y0 + (((y1 - y0) * lo + (1 << (L - 1))) >> L)

    def forward(self, x):
        return self.forward_codes(self.codes(x)).to(x.dtype) * self.s_out


def quantize_model(model, calib_loader, m: int, batches: int, device="cpu"):
    """Replace every activation sublayer of ``model`` (in place) by its 8-bit table."""
    stats = calibrate(model, calib_loader, batches, device, keep_inputs=1)
    for name, mod in list(activation_sublayers(model).items()):
        s_in, s_out = scales(stats[name])
        F_ = stats[name].inputs[0].shape[1]
        q = QuantizedTableActivation(tabulate(mod, F_, s_in, s_out, m, device), s_in, s_out, m)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, q.to(device))
    return model


@torch.no_grad()
def accuracy(model, loader, device="cpu", limit=0):
    model.eval()
    correct = total = 0
    for i, (x, y) in enumerate(loader):
        if limit and i >= limit:
            break
        correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
        total += y.numel()
    return 100.0 * correct / max(total, 1)


def main(argv=None):
    from errors import UserError, report
    from .export import load_model_and_data
    p = argparse.ArgumentParser(prog="python -m fpga.eval_quantized", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--limit-test-batches", type=int, default=0, help="evaluate fewer batches (0: all)")
    args = p.parse_args(argv)
    try:
        check_addr_bits(args.addr_bits)
        model, calib, test = load_model_and_data(args)
    except (UserError, ValueError) as exc:
        return report("python -m fpga.eval_quantized", exc)
    acc_float = accuracy(model, test, limit=args.limit_test_batches)
    quantize_model(model, calib, args.addr_bits, args.calib_batches)
    acc_q = accuracy(model, test, limit=args.limit_test_batches)
    src = args.checkpoint or "freshly built model"
    print(f"{src} ({args.act}, h = {args.hidden_factor:g}) on {args.dataset}:")
    print(f"  float32 activations:          {acc_float:.2f} %")
    print(f"  8-bit tables (M = {args.addr_bits}, 2^M+1 entries): {acc_q:.2f} %")
    print(f"  difference:                   {acc_q - acc_float:+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
