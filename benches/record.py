#!/usr/bin/env python3
"""Records one benchmark figure as a JSON line, beside the CPU it ran on.

Every benchmark calls this once per figure:

    python3 benches/record.py --workload "..." --figure 30.2 --unit ms/batch \
        --reference "Keras 3.15.1 / tensorflow-cpu 2.21.0" --reference-figure 61.8 \
        --ratio 2.05 --ratio-means "x Keras's speed" --rerun "bash benches/keras_side_by_side.sh"

It prints the line and appends it to benches/results.jsonl (or the file
$STATECTL_BENCH_RESULTS names; `-` records nothing). A figure with no
same-run reference (a peak RSS, a store's size) is a bound: give --bound
instead of --reference. `python3 benches/performance_page.py` turns the
file into docs/performance.md and the README's summary.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ("avx512f", "avx2", "fma")


def cpu():
    """The CPU's model, the vector flags statectl's kernels choose between,
    its cores, and the kernel path in use (capped by STATECTL_CPU_PATH)."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    present = [flag for flag in FLAGS if flag in flags]
    if "avx512f" in present:
        kind = "AVX-512"
    elif "avx2" in present and "fma" in present:
        kind = "AVX2 + FMA"
    else:
        kind = "portable"
    cap = os.environ.get("STATECTL_CPU_PATH", "")
    if cap == "portable" or (cap == "avx2" and kind == "AVX-512"):
        kind = "portable" if cap == "portable" else "AVX2 + FMA"
        kind += f" (STATECTL_CPU_PATH={cap})"
    return {"model": model, "flags": present, "cores": os.cpu_count(), "kind": kind}


def commit():
    """The commit measured, marked `-dirty` when tracked files (other than
    the results file) differ from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    head = git("rev-parse", "--short=12", "HEAD")
    if head.returncode != 0:
        return "unknown"
    # The results file itself is not the code measured: the figures a run
    # records before this one change it.
    dirty = git("diff", "--quiet", "HEAD", "--", ".", ":(exclude)benches/results.jsonl").returncode != 0
    return head.stdout.strip() + ("-dirty" if dirty else "")


def parse(argv):
    p = argparse.ArgumentParser(description="Record one benchmark figure as a JSON line.")
    p.add_argument("--workload", required=True, help="what was measured, with its shapes")
    p.add_argument("--figure", required=True, type=float, help="statectl's figure")
    p.add_argument("--unit", required=True)
    ref = p.add_mutually_exclusive_group(required=True)
    ref.add_argument("--reference", help="what ran beside it in the same run")
    ref.add_argument("--bound", action="store_true", help="a bound (RSS, size): no reference")
    p.add_argument("--reference-figure", type=float)
    p.add_argument("--reference-unit", help="when it differs from --unit")
    p.add_argument("--ratio", type=float, help="statectl beside the reference")
    p.add_argument("--ratio-means", help='how to read the ratio, e.g. "x Keras\'s speed"')
    p.add_argument("--rerun", required=True, help="the command that measures it again")
    p.add_argument("--headline", action="store_true", help="also in the README's summary")
    args = p.parse_args(argv)
    if args.reference and (args.reference_figure is None or args.ratio is None or not args.ratio_means):
        p.error("--reference needs --reference-figure, --ratio and --ratio-means")
    return args


def main(argv):
    args = parse(argv)
    row = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit(),
        "cpu": cpu(),
        "workload": args.workload,
        "figure": args.figure,
        "unit": args.unit,
        "reference": None if args.bound else args.reference,
        "reference_figure": args.reference_figure,
        "reference_unit": args.reference_unit or (None if args.bound else args.unit),
        "ratio": args.ratio,
        "ratio_means": args.ratio_means,
        "rerun": args.rerun,
        "headline": args.headline,
    }
    line = json.dumps(row, ensure_ascii=False)
    print(f"recorded: {line}")
    target = os.environ.get("STATECTL_BENCH_RESULTS", os.path.join(ROOT, "benches", "results.jsonl"))
    if target != "-":
        with open(target, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
