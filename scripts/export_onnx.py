#!/usr/bin/env python
"""Export a checkpoint to ONNX with standard operators only, and check it in onnxruntime.

  python scripts/export_onnx.py --checkpoint FILE --out MODEL.onnx [--opset 17]
  python scripts/export_onnx.py --checkpoint FILE --out MODEL.onnx --check 1000
  python scripts/export_onnx.py --int8 --params D/quant_params.npz --out M.onnx --check 10000

The checkpoint defines the model, as for ``cifar10_main.py --test-only --load FILE``: a
ResMLP with ReLU, B-spline or LERP-PSA activations, or a ResNet-20. The graph (deploy/
onnx_export.py, docs/DEPLOY.md) has default-domain nodes only, a symbolic batch dimension,
input ``images`` (N, C, 32, 32; ResNet-20: any height and width) and output ``logits``; learned
activations are their eval-mode tables read by GatherElements, with the kernels' index clamping and
edge extrapolation.

``--check N`` runs the graph in onnxruntime on N test images (the first N of Fashion-MNIST for
a 1-channel model, synthetic gratings otherwise; --check-data picks) beside the PyTorch model
and prints the largest logit difference (absolute, and relative to each image's largest
logit), the number of images whose top-1 class differs, and both accuracies.

It prints what it wrote and, as its last line, one JSON object: out, opset, nodes, op_types
(op -> count), bytes, parameters, model, and check (the figures above) when asked.
``--int8 --params D/quant_params.npz`` exports instead the integer model of ``fpga.int_resmlp``
(deploy/onnx_int8.py: input the uint8 image, output the int32 logit codes); its ``--check N``
runs the first N Fashion-MNIST test images in onnxruntime beside ``fpga.int_resmlp.forward``
and prints the number of differing logits (0 when the graph is right) and both accuracies.

Bad input (a missing file, not a checkpoint, an unknown architecture) is one line on stderr
and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from errors import UserError, report  # noqa: E402

PROG = "export_onnx.py"


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="the model file (.bin state_dict)")
    p.add_argument("--int8", action="store_true",
                   help="export the integer model of --params (fpga.int_resmlp) instead")
    p.add_argument("--params", default=None,
                   help="--int8: the quant_params.npz of cifar10_quant.py --dump-params")
    p.add_argument("--unsigned-weights", action="store_true",
                   help="--int8: weights as uint8 with zero point 128 (onnxruntime's u8u8 "
                        "kernel, exact on every CPU; the default u8s8 kernel can saturate on "
                        "x86 CPUs without VNNI)")
    p.add_argument("--out", required=True, help="the ONNX file to write (folders are created)")
    p.add_argument("--opset", type=int, default=17, help="default-domain opset, 17 or later (17)")
    p.add_argument("--check", type=int, default=0, metavar="N",
                   help="run N test images in onnxruntime beside PyTorch and report (0: no check)")
    p.add_argument("--check-data", default="auto", choices=("auto", "fashion-mnist", "synthetic"),
                   help="images of the check: auto (Fashion-MNIST for 1-channel models, else "
                        "synthetic), fashion-mnist, synthetic")
    p.add_argument("--dataset-dir", default=None,
                   help="folder of the Fashion-MNIST idx files (default: the Debian package's)")
    p.add_argument("--kernel-lerp", action="store_true",
                   help="write LERP tables as the kernels compute them, bit for bit (19 nodes "
                        "per lookup plus the BatchNorm's 2) instead of the lean lookup (9 nodes "
                        "with the BatchNorm, 7 after a Linear; equal up to fp32 rounding)")
    p.add_argument("--bspline-as-lerp", action="store_true",
                   help="write B-splines as the equal K-point LERP table (19 nodes instead of "
                        "30 per activation; equal up to fp32 rounding)")
    return p


def describe(model) -> str:
    from models import describe_model
    info = describe_model(model)
    if info["arch"] == "resnet20":
        return f"ResNet-20 ({info['in_channels']} channels, {info['num_classes']} classes)"
    act = {"base": "ReLU", "bspline": "B-spline", "psa": "LERP-PSA"}[info["act"]]
    return (f"ResMLP {act}, hidden {info['hidden']} (h = {info['hidden_factor']:g}), embed "
            f"{info['embed_dim']}, {info['depth']} blocks, {info['in_channels']} channel(s)")


def main_int8(args) -> int:
    from deploy.onnx_export import check_opset, require_onnx, save_model, summary
    require_onnx()
    check_opset(args.opset)
    if args.checkpoint:
        raise UserError("--int8 exports the integer model of --params; drop --checkpoint")
    if not args.params:
        raise UserError("--int8 needs --params D/quant_params.npz (cifar10_quant.py --dump-params)")
    if args.check:
        from deploy.onnx_check import require_onnxruntime
        require_onnxruntime()
    from deploy.onnx_int8 import check_int8, export_int8, image_batch
    from fpga.int_resmlp import load_params
    params, meta = load_params(args.params)
    if args.check:  # the images first: nothing is written when they are missing
        images, labels = image_batch(meta, args.dataset_dir, args.check)
    proto = export_int8(params, meta, args.opset, unsigned_weights=args.unsigned_weights)
    path = save_model(proto, args.out)
    info = summary(proto)
    act = {"base": "ReLU", "psa": "LERP-PSA"}[meta["act"]]
    result = dict(out=path, opset=args.opset, nodes=info["nodes"], op_types=info["op_types"],
                  bytes=os.path.getsize(path),
                  model=f"INT8 ResMLP {act}, hidden {meta['hidden']}",
                  weights="u8u8" if args.unsigned_weights else "u8s8")
    print(f"wrote {path}: {result['model']}, {info['nodes']} nodes "
          f"({', '.join(f'{k} {v}' for k, v in info['op_types'].items())}), opset "
          f"{args.opset}, {result['bytes'] / 1024:.1f} KiB")
    if args.check:
        from deploy.onnx_check import make_session
        figures = check_int8(make_session(path), params, meta, images, labels)
        print(f"check on {figures['images']} fashion-mnist images: {figures['differing_logits']} "
              f"logit(s) differ from fpga.int_resmlp on {figures['differing_images']} image(s); "
              f"top-1 accuracy {figures['accuracy_onnx']:.2f} % (onnxruntime), "
              f"{figures['accuracy_reference']:.2f} % (fpga.int_resmlp)")
        result["check"] = figures
    print(json.dumps(result))
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.check < 0:
            raise UserError(f"--check must be 0 or a positive number of images, got {args.check}")
        if args.int8:
            return main_int8(args)
        if args.params or args.unsigned_weights:
            raise UserError("--params and --unsigned-weights go with --int8")
        if not args.checkpoint:
            raise UserError("pass --checkpoint FILE (or --int8 --params D/quant_params.npz)")
        from deploy.onnx_export import (check_opset, count_parameters, export_model,
                                        require_onnx, save_model, summary)
        require_onnx()
        check_opset(args.opset)
        if args.check:
            from deploy.onnx_check import require_onnxruntime
            require_onnxruntime()
        from models import build_from_checkpoint
        model = build_from_checkpoint(args.checkpoint).eval()
        if args.check:  # the images first: a bad --check-data stops before anything is written
            from deploy.onnx_check import check_images, compare, make_session
            images, labels, data = check_images(int(model.in_channels), args.check,
                                                args.check_data, args.dataset_dir)
        proto = export_model(model, args.opset, bspline_as_lerp=args.bspline_as_lerp,
                             kernel_lerp=args.kernel_lerp)
        path = save_model(proto, args.out)
        info = summary(proto)
        result = dict(out=path, opset=args.opset, nodes=info["nodes"], op_types=info["op_types"],
                      bytes=os.path.getsize(path), parameters=count_parameters(model),
                      model=describe(model))
        print(f"wrote {path}: {result['model']}, {info['nodes']} nodes "
              f"({', '.join(f'{k} {v}' for k, v in info['op_types'].items())}), opset "
              f"{args.opset}, {result['bytes'] / 1024:.1f} KiB")
        if args.check:
            figures = compare(model, make_session(path), images, labels)
            figures["data"] = data
            acc = ""
            if "accuracy_onnx" in figures:
                acc = (f"; top-1 accuracy {figures['accuracy_onnx']:.2f} % (onnxruntime), "
                       f"{figures['accuracy_torch']:.2f} % (PyTorch)")
            print(f"check on {figures['images']} {data} images: largest logit difference "
                  f"{figures['max_abs_diff']:.3g} ({figures['max_rel_diff']:.3g} of the image's "
                  f"largest logit), top-1 differs on {figures['top1_flips']} image(s){acc}")
            result["check"] = figures
        print(json.dumps(result))
    except UserError as exc:
        return report(PROG, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
