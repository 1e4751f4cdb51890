#!/usr/bin/env python
"""The paper's compression claim in an inference engine: onnxruntime (CPU) beside PyTorch eager.

  python scripts/bench_onnx.py                      # the shipped Fashion-MNIST models
  python scripts/bench_onnx.py --model-root DIR --repeats 21 --out bench.json

Models (the manifest's Fashion-MNIST folder, or --model-root): ReLU h = 2, ReLU h = 1,
LERP-PSA h = 1 and B-spline h = 1 (hidden 192, 96, 96, 96), each exported as by
scripts/export_onnx.py (--bspline-as-lerp adds the B-spline written as its LERP table,
--kernel-lerp the LERP-PSA h = 1 graph with the kernel-exact lookups).
Before timing, each graph is checked against its PyTorch model on the timing images (logits
within 1e-4 of the largest logit, or the run stops) and its top-1 accuracy is measured in
onnxruntime on the Fashion-MNIST test set (--accuracy-images).

The integer models (--int8, on by default): the INT8 dumps of ReLU h = 2, ReLU h = 1 and
LERP-PSA h = 1 (<act folder>/quant/<stem>/quant_params.npz under the model root, the models of
results_int8.csv), each exported by deploy/onnx_int8.py and run in onnxruntime only (uint8
images in, int32 logit codes out). Before timing each is checked against fpga.int_resmlp
on the timing images (0 differing logits, or the run stops), and its accuracy is measured on
--accuracy-images.

Timing, for each thread count (--threads, default 1 and 2) and batch size (--batches, default
1 and 128): one onnxruntime session per model with that many intra-op threads (sequential
execution, all graph optimisations) and ``torch.set_num_threads`` for PyTorch eager under
``torch.inference_mode``. Every (model, engine) pair gets warm-up calls, then a number of calls
per measurement that lasts at least --min-time seconds; the pairs are measured in turn,
alternated in one process (the order rotates every round), for --repeats rounds. Reported:
the median time per call (latency, ms) and batch / latency (images per second), with the
interquartile range of the rounds in the JSON.

Prints a Markdown table of the models (parameters, ONNX size, nodes, accuracy), a Markdown
table of the timings, the LERP-PSA h = 1 / ReLU h = 2 speed ratio in onnxruntime for every
setting, and one JSON object as the last line (--out also writes it to a file).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from errors import UserError, report, write_atomic  # noqa: E402

PROG = "bench_onnx.py"
# (label, activation, hidden factor); the first is the reference of the speed ratios.
MODELS = (("ReLU h = 2", "base", 2.0), ("ReLU h = 1", "base", 1.0),
          ("LERP-PSA h = 1", "psa", 1.0), ("B-spline h = 1", "bspline", 1.0))
CLAIM = ("LERP-PSA h = 1", "ReLU h = 2")
# The integer models (label, activation, hidden factor) and the INT8 claims: (model, reference).
INT8_MODELS = (("INT8 ReLU h = 2", "base", 2.0), ("INT8 ReLU h = 1", "base", 1.0),
               ("INT8 LERP-PSA h = 1", "psa", 1.0))
INT8_CLAIMS = (("INT8 LERP-PSA h = 1", "INT8 ReLU h = 2"),
               ("INT8 LERP-PSA h = 1", "INT8 ReLU h = 1"))
ENGINES = ("onnxruntime", "pytorch")
TOL = 1e-4


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def positive_int(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return v


def positive_float(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not v > 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{value} must be a positive number")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-root", default=None,
                   help="folder of teacher_model.bin and the student folders (default: the "
                        "manifest's Fashion-MNIST folder)")
    p.add_argument("--dataset-dir", default=None,
                   help="folder of the Fashion-MNIST idx files (default: the Debian package's)")
    p.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2],
                   help="thread counts (1 2)")
    p.add_argument("--batches", type=positive_int, nargs="+", default=[1, 128],
                   help="batch sizes (1 128)")
    p.add_argument("--repeats", type=positive_int, default=15,
                   help="measurement rounds; the median is reported (15)")
    p.add_argument("--min-time", type=positive_float, default=0.1,
                   help="seconds one measurement lasts at least (0.1)")
    p.add_argument("--warmup", type=positive_int, default=3, help="warm-up calls per pair (3)")
    p.add_argument("--accuracy-images", type=int, default=10000,
                   help="Fashion-MNIST test images for the accuracy column (10000; 0: skip)")
    p.add_argument("--bspline-as-lerp", action="store_true",
                   help="also time the B-spline h = 1 model written as its LERP table")
    p.add_argument("--kernel-lerp", action="store_true",
                   help="also time the LERP-PSA h = 1 graph with the kernel-exact lookups (19 "
                        "nodes each, the export before the lean lookup)")
    p.add_argument("--opset", type=int, default=17, help="opset of the graphs (17)")
    p.add_argument("--no-int8", dest="int8", action="store_false",
                   help="leave out the INT8 graphs (by default they are timed beside the float "
                        "ones)")
    p.add_argument("--out", default=None, help="also write the JSON result to this file")
    return p


# --- measurement -------------------------------------------------------------------------------

def time_calls(fn, steps: int) -> float:
    """Seconds per call of ``fn`` over ``steps`` calls."""
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def calibrate(fn, min_time: float, warmup: int) -> int:
    """Calls per measurement so that one measurement lasts at least ``min_time``."""
    for _ in range(warmup):
        fn()
    once = time_calls(fn, 1)
    return max(1, math.ceil(min_time / max(once, 1e-7)))


def measure(pairs: dict, repeats: int, min_time: float, warmup: int, progress=None) -> dict:
    """``{key: [seconds per call, one per round]}`` for callables ``pairs[key]``, measured in
    turn, the order rotated by one every round."""
    steps = {k: calibrate(fn, min_time, warmup) for k, fn in pairs.items()}
    keys = list(pairs)
    times = {k: [] for k in keys}
    for r in range(repeats):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            times[k].append(time_calls(pairs[k], steps[k]))
        if progress is not None:
            progress.update(1)
    return times


def quartiles(values):
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --- the run -----------------------------------------------------------------------------------

def load_models(root: str, bspline_as_lerp: bool, opset: int, kernel_lerp: bool = False):
    """``[(label, torch model, onnx bytes, summary)]`` of the benchmarked models."""
    import experiments
    from deploy.onnx_export import count_parameters, export_model, summary
    from models import build_from_checkpoint
    m = experiments.load()
    paths = [(label, m.checkpoint(root, act, h), act == "bspline")
             for label, act, h in MODELS]
    missing = [p for _, p, _ in paths if not os.path.isfile(p)]
    if missing:
        raise UserError(f"missing {len(missing)} checkpoint(s), first {missing[0]}; train them "
                        "(scripts/run_fashion_mnist_repro.sh) or pass --model-root")
    out = []
    for label, path, is_bspline in paths:
        model = build_from_checkpoint(path).eval()
        variants = [(label, False, False)]
        if is_bspline and bspline_as_lerp:
            variants.append((label + " (as LERP)", True, False))
        if label == CLAIM[0] and kernel_lerp:
            variants.append((label + " (kernel LERP)", False, True))
        for name, as_lerp, exact in variants:
            proto = export_model(model, opset, bspline_as_lerp=as_lerp, kernel_lerp=exact)
            info = summary(proto)
            data = proto.SerializeToString()
            info.update(parameters=count_parameters(model), onnx_bytes=len(data),
                        checkpoint=os.path.relpath(path, ROOT))
            out.append((name, model, data, info))
    return out


def int8_dump(root: str, act: str, h: float) -> str:
    import experiments
    m = experiments.load()
    return os.path.join(root, m.activation(act).folder, "quant", m.stem(h), "quant_params.npz")


def load_int8_models(root: str, opset: int):
    """``[(label, (params, meta), onnx bytes, summary)]`` of the INT8 graphs."""
    from deploy.onnx_export import summary
    from deploy.onnx_int8 import export_int8
    from fpga.int_resmlp import load_params
    paths = [(label, int8_dump(root, act, h)) for label, act, h in INT8_MODELS]
    missing = [p for _, p in paths if not os.path.isfile(p)]
    if missing:
        raise UserError(f"missing {len(missing)} INT8 dump(s), first {missing[0]}; run "
                        "cifar10_quant.py --dump-params (scripts/run_quant_baseline.sh, "
                        "scripts/run_quant_lerp_psa.sh) or pass --no-int8")
    out = []
    for label, path in paths:
        params, meta = load_params(path)
        proto = export_int8(params, meta, opset)
        info = summary(proto)
        data = proto.SerializeToString()
        info.update(parameters=int(sum(v.size for v in params.values())), onnx_bytes=len(data),
                    checkpoint=os.path.relpath(path, ROOT))
        out.append((label, (params, meta), data, info))
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import numpy as np
        import torch
        import experiments
        from deploy.onnx_check import (check_images, compare_logits, make_session,
                                       require_onnxruntime, run_session, run_torch)
        from deploy.onnx_export import check_opset, require_onnx
        require_onnx()
        ort = require_onnxruntime()
        check_opset(args.opset)
        if not 0 <= args.accuracy_images <= 10000:
            raise UserError(f"--accuracy-images must be 0..10000, got {args.accuracy_images}")
        root = os.path.abspath(args.model_root or experiments.load().model_root("fashion-mnist",
                                                                               ROOT))
        models = load_models(root, args.bspline_as_lerp, args.opset, args.kernel_lerp)
        int8_models = load_int8_models(root, args.opset) if args.int8 else []
        n_img = max(max(args.batches), args.accuracy_images)
        images, labels, _ = check_images(1, min(n_img, 10000), "fashion-mnist", args.dataset_dir)
        if max(args.batches) > len(images):
            reps = math.ceil(max(args.batches) / len(images))
            images, labels = images.repeat(reps, 1, 1, 1), labels.repeat(reps)

        # Correctness first: the graph against PyTorch on the timing images, then accuracy.
        batch_x = images[:max(args.batches)]
        for name, model, data, info in models:
            session = make_session(data, threads=max(args.threads))
            figures = compare_logits(run_torch(model, batch_x),
                                     run_session(session, batch_x.numpy()))
            if figures["max_rel_diff"] > TOL:
                raise UserError(f"{name}: the ONNX graph differs from PyTorch by "
                                f"{figures['max_rel_diff']:.3g} of the largest logit; not timing "
                                "it")
            info["check_max_rel_diff"] = figures["max_rel_diff"]
            if args.accuracy_images:
                logits = run_session(session, images[:args.accuracy_images].numpy())
                info["accuracy_onnx"] = round(100.0 * float(
                    (logits.argmax(1) == labels[:args.accuracy_images].numpy()).mean()), 2)

        if int8_models:
            from deploy.onnx_int8 import check_int8, image_batch
            n_u8 = max(max(args.batches), args.accuracy_images)
            u8, u8_labels = image_batch(int8_models[0][1][1], args.dataset_dir, min(n_u8, 10000))
            if max(args.batches) > len(u8):
                u8 = np.tile(u8, (math.ceil(max(args.batches) / len(u8)), 1, 1, 1))
        for name, (params, meta), data, info in int8_models:
            session = make_session(data, threads=max(args.threads))
            figures = check_int8(session, params, meta, u8[:max(args.batches)])
            if figures["differing_logits"]:
                raise UserError(f"{name}: {figures['differing_logits']} logit(s) of the INT8 graph "
                                "differ from fpga.int_resmlp; not timing it")
            info["check_differing_logits"] = 0
            if args.accuracy_images:
                figures = check_int8(session, params, meta, u8[:args.accuracy_images],
                                     u8_labels[:args.accuracy_images])
                if figures["differing_logits"]:
                    raise UserError(f"{name}: {figures['differing_logits']} logit(s) of the INT8 "
                                    "graph differ from fpga.int_resmlp on the accuracy images")
                info["accuracy_onnx"] = figures["accuracy_onnx"]

        from tqdm import tqdm
        results = []
        total = len(args.threads) * len(args.batches) * args.repeats
        with tqdm(total=total, desc="rounds", file=sys.stderr, dynamic_ncols=True) as bar:
            for threads in args.threads:
                torch.set_num_threads(threads)
                sessions = {name: make_session(data, threads=threads)
                            for name, _, data, _ in models + int8_models}
                for batch in args.batches:
                    x_np = np.ascontiguousarray(images[:batch].numpy())
                    x_t = images[:batch].clone()
                    pairs = {}
                    for name, model, _, _ in models:
                        s = sessions[name]
                        pairs[(name, "onnxruntime")] = (lambda s=s: s.run(None, {"images": x_np}))

                        def eager(model=model):
                            with torch.inference_mode():
                                model(x_t)
                        pairs[(name, "pytorch")] = eager
                    if int8_models:
                        u8_batch = np.ascontiguousarray(u8[:batch])
                        for name, _, _, _ in int8_models:
                            s = sessions[name]
                            pairs[(name, "onnxruntime")] = (
                                lambda s=s, x=u8_batch: s.run(None, {"images": x}))
                    times = measure(pairs, args.repeats, args.min_time, args.warmup, bar)
                    for (name, engine), ts in times.items():
                        q1, med, q3 = quartiles(ts)
                        results.append(dict(model=name, engine=engine, threads=threads,
                                            batch=batch, latency_ms=med * 1e3,
                                            latency_iqr_ms=[q1 * 1e3, q3 * 1e3],
                                            images_per_s=batch / med))
        env = dict(cpu=cpu_name(), logical_cpus=os.cpu_count(), onnxruntime=ort.__version__,
                   torch=torch.__version__, python=platform.python_version(),
                   repeats=args.repeats, min_time_s=args.min_time, opset=args.opset,
                   model_root=os.path.relpath(root, ROOT),
                   date=time.strftime("%Y-%m-%d %H:%M %Z"))
        claim = claim_ratios(results)
        int8_claim = int8_ratios(results) if int8_models else []
        print_tables(models + int8_models, results, claim, env, args.accuracy_images, int8_claim)
        out = dict(environment=env, models={n: i for n, _, _, i in models + int8_models},
                   timings=results, claim=claim, int8_claim=int8_claim)
        line = json.dumps(out)
        if args.out:
            write_atomic(args.out, lambda f: f.write(line + "\n"))
        print(line)
    except UserError as exc:
        return report(PROG, exc)
    return 0


def claim_ratios(results):
    """For every (threads, batch): ReLU h = 2 latency / LERP-PSA h = 1 latency in
    onnxruntime and in PyTorch (> 1: LERP-PSA h = 1 is faster)."""
    lat = {(r["model"], r["engine"], r["threads"], r["batch"]): r["latency_ms"] for r in results}
    out = []
    for (model, engine, threads, batch), ms in sorted(lat.items(), key=lambda kv: kv[0][2:]):
        if model != CLAIM[0]:
            continue
        ref = lat.get((CLAIM[1], engine, threads, batch))
        if ref is not None:
            out.append(dict(engine=engine, threads=threads, batch=batch,
                            speedup=ref / ms))
    return out


def int8_ratios(results):
    """For every (threads, batch) and INT8 claim (model, reference): reference latency / model
    latency in onnxruntime (> 1: the model is faster)."""
    lat = {(r["model"], r["threads"], r["batch"]): r["latency_ms"] for r in results
           if r["engine"] == "onnxruntime"}
    out = []
    for model, ref in INT8_CLAIMS:
        for (name, threads, batch), ms in sorted(lat.items(), key=lambda kv: kv[0][1:]):
            if name == model and (ref, threads, batch) in lat:
                out.append(dict(model=model, reference=ref, threads=threads, batch=batch,
                                speedup=lat[(ref, threads, batch)] / ms))
    return out


def print_tables(models, results, claim, env, acc_images, int8_claim=()):
    print(f"{env['cpu']} ({env['logical_cpus']} logical CPUs), onnxruntime {env['onnxruntime']}, "
          f"PyTorch {env['torch']}, Python {env['python']}, {env['date']}; median of "
          f"{env['repeats']} rounds, models alternated in one process")
    print()
    acc_head = f" | top-1 (ORT, {acc_images} images)" if acc_images else ""
    print(f"| model | parameters | ONNX KiB | nodes{acc_head} |")
    print("|---|---:|---:|---:|" + ("---:|" if acc_images else ""))
    for name, _, _, info in models:
        acc = f" | {info['accuracy_onnx']:.2f} %" if acc_images else ""
        print(f"| {name} | {info['parameters']:,} | {info['onnx_bytes'] / 1024:.0f} | "
              f"{info['nodes']}{acc} |")
    print()
    print("| threads | batch | model | onnxruntime ms | onnxruntime img/s | PyTorch ms | "
          "PyTorch img/s |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    rows = {}
    for r in results:
        rows.setdefault((r["threads"], r["batch"], r["model"]), {})[r["engine"]] = r
    order = [n for n, _, _, _ in models]
    for (threads, batch, model) in sorted(rows, key=lambda k: (k[0], k[1], order.index(k[2]))):
        o = rows[(threads, batch, model)]["onnxruntime"]
        p = rows[(threads, batch, model)].get("pytorch")
        torch_cols = (f"{p['latency_ms']:.3f} | {p['images_per_s']:,.0f}" if p else "- | -")
        print(f"| {threads} | {batch} | {model} | {o['latency_ms']:.3f} | "
              f"{o['images_per_s']:,.0f} | {torch_cols} |")
    print()
    for c in claim:
        verdict = "faster" if c["speedup"] > 1 else "slower"
        print(f"{c['engine']}, {c['threads']} thread(s), batch {c['batch']}: {CLAIM[0]} is "
              f"{verdict} than {CLAIM[1]}: latency ratio {CLAIM[1]} / {CLAIM[0]} = "
              f"{c['speedup']:.2f}")
    for c in int8_claim:
        verdict = "faster" if c["speedup"] > 1 else "slower"
        print(f"onnxruntime, {c['threads']} thread(s), batch {c['batch']}: {c['model']} is "
              f"{verdict} than {c['reference']}: latency ratio {c['reference']} / {c['model']} = "
              f"{c['speedup']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
