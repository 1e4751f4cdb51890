#!/usr/bin/env python
"""Format kernel_time_mes.py --json lines (a JSONL file or stdin) as a Markdown
table, with each row's time relative to the row named by --baseline."""
import argparse
import json
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("jsonl", nargs="?", help="file of JSON lines (default: stdin)")
    p.add_argument("--baseline", default="relu", help="activation[:impl] the ratios refer to (relu)")
    args = p.parse_args()
    lines = open(args.jsonl) if args.jsonl else sys.stdin
    rows = [json.loads(l) for l in lines if l.strip().startswith("{")]
    if not rows:
        sys.exit("timing_table.py: error: no JSON lines to format")
    act, _, impl = args.baseline.partition(":")
    # The baseline is the first matching row that is not compiled (if any).
    cands = [r for r in rows if r["activation"] == act and (not impl or r["impl"] == impl)]
    base = next((r for r in cands if not r.get("compile")), cands[0] if cands else None)
    r0 = rows[0]
    what = "activation forward+backward" if r0.get("op_only") else f"{r0['layers']} x [activation, Linear] training step"
    print(f"{what}, {r0['tokens']} x {r0['features']} {r0['dtype']} on {r0['device']}, "
          f"{r0['steps']} steps per measurement, {r0['repeats']} measurements")
    print()
    print(f"| activation | impl | compiled | mean +- std (ms) | median (ms) | x {args.baseline} | peak memory (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['median_ms'] / base['median_ms']:.2f}" if base else "-"
        print(f"| {r['activation']} | {r['impl']} | {'yes' if r.get('compile') else 'no'} | "
              f"{r['mean_ms']:.2f} +- {r['std_ms']:.2f} | "
              f"{r['median_ms']:.2f} | {ratio} | {r['peak_mb']:.1f} |")


if __name__ == "__main__":
    main()
