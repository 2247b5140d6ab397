#!/usr/bin/env python3
"""Makes docs/performance.md and the README's performance summary from
benches/results.jsonl: the newest row per workload, reference and CPU kind.

    python3 benches/performance_page.py          rewrite both
    python3 benches/performance_page.py --check  exit 1 if either differs

The notes under the tables come from benches/performance_notes.md.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benches", "results.jsonl")
NOTES = os.path.join(ROOT, "benches", "performance_notes.md")
PAGE = os.path.join(ROOT, "docs", "performance.md")
README = os.path.join(ROOT, "README.md")
SUMMARY_START = "<!-- performance summary: made by benches/performance_page.py -->"
SUMMARY_END = "<!-- end of performance summary -->"

INTRO = """# Performance

Every figure here is statectl's beside a reference **measured in the same
run** on the same machine, and the ratio between the two: a shared machine's
speed drifts from minute to minute, so absolute times vary and ratios travel.
A figure with no reference is a bound (peak memory, a store's size).

The CPU column says which vector path ran: **AVX-512**, **AVX2 + FMA**, or
**portable** (the scalar path every CPU has, measured on a wider CPU with
`STATECTL_CPU_PATH=portable`, which caps the kernels' path; results are the
same bits on every path). [The machines](#the-machines) lists the CPU models
and cores.

Each benchmark appends its figures to `benches/results.jsonl` as JSON lines
(date, commit, CPU model, flags and cores, the figure, the same-run
reference, the ratio; `benches/record.py` writes them), and this page shows
the newest row per workload, reference and CPU kind. Rerun a row with the
command under its table, then `python3 benches/performance_page.py` to
remake this page and the README's summary (the tests fail when either
differs from the results file).
"""


def load(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{n}: not a JSON line ({e}); remove or fix that line")
    return rows


def newest(rows):
    """The last row for each (workload, reference, CPU kind), in the order
    each workload first appears."""
    latest, order = {}, []
    for row in rows:
        key = (row["workload"], row.get("reference"), row["cpu"]["kind"])
        if key not in latest:
            order.append(key)
        latest[key] = row
    return [latest[k] for k in order]


# The benchmarks' sections, by the script or bench their rerun command
# names, in this order; any other command gets a section of its own.
SECTIONS = [
    ("keras_side_by_side.sh", "Training beside Keras and PyTorch"),
    ("--bench kernels", "Kernels: products, burn-in, a training step in-process"),
    ("--bench audit", "Audits"),
    ("store_at_scale.sh", "The store at scale"),
    ("python_side_by_side.sh", "Python"),
    ("checkpoint_cost.sh", "Checkpoints"),
    ("gc_beside_writers.sh", "gc beside writers"),
    ("shared_store.sh", "The shared store"),
]


def section_of(row):
    for key, title in SECTIONS:
        if key in row["rerun"]:
            return title
    return row["rerun"]


def number(x):
    if x is None:
        return ""
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def figure(row):
    return f"{number(row['figure'])} {row['unit']}"


def reference(row):
    if row.get("reference") is None:
        return "a bound"
    return f"{row['reference']}: {number(row['reference_figure'])} {row['reference_unit']}"


def ratio(row):
    if row.get("ratio") is None:
        return ""
    r = row["ratio"]
    told = f"{r:.0f}" if r >= 10 else f"{r:.2f}"
    return f"**{told}{row['ratio_means']}**"


def page(rows, notes):
    out = [INTRO]
    titles = [title for _, title in SECTIONS]
    for row in rows:
        if section_of(row) not in titles:
            titles.append(section_of(row))
    for title in titles:
        mine = [r for r in rows if section_of(r) == title]
        if not mine:
            continue
        out.append(f"\n## {title}\n")
        out.append("| work | CPU | statectl | reference, same run | ratio | measured |")
        out.append("| --- | --- | --- | --- | --- | --- |")
        for r in mine:
            out.append(f"| {r['workload']} | {r['cpu']['kind']} | {figure(r)} | {reference(r)} | {ratio(r)} | "
                       f"{r['date'][:10]}, {r['commit']} |")
        reruns = sorted({r["rerun"] for r in mine})
        out.append("\nRerun: " + "; ".join(f"`{c}`" for c in reruns) + "\n")
    out.append("\n## The machines\n")
    machines = sorted({(r["cpu"]["kind"], r["cpu"]["model"], r["cpu"]["cores"], ", ".join(r["cpu"]["flags"]))
                       for r in rows})
    for kind, model, cores, flags in machines:
        out.append(f"- {kind}: {model}, {cores} cores (flags: {flags or 'none of avx512f, avx2, fma'})")
    out.append("")
    if notes.strip():
        out.append("\n" + notes.strip() + "\n")
    return "\n".join(out).rstrip() + "\n"


def summary(rows):
    lines = [SUMMARY_START, "", "| work | CPU | statectl beside its reference, same run | rerun |",
             "| --- | --- | --- | --- |"]
    for r in rows:
        # Paths a CPU was capped to are on the page, not in the summary.
        if r.get("headline") and "STATECTL_CPU_PATH" not in r["cpu"]["kind"]:
            told = f"{ratio(r)} ({figure(r)}; {reference(r)})" if r.get("ratio") is not None else figure(r)
            lines.append(f"| {r['workload']} | {r['cpu']['kind']} | {told} | `{r['rerun']}` |")
    lines += ["", SUMMARY_END]
    return "\n".join(lines)


def with_summary(readme, text):
    start, end = readme.find(SUMMARY_START), readme.find(SUMMARY_END)
    if start < 0 or end < start:
        sys.exit(f"README.md lacks the markers '{SUMMARY_START}' ... '{SUMMARY_END}'; put them back")
    return readme[:start] + text + readme[end + len(SUMMARY_END):]


def main(argv):
    check = argv == ["--check"]
    if argv and not check:
        sys.exit("usage: python3 benches/performance_page.py [--check]")
    rows = newest(load(RESULTS))
    notes = open(NOTES).read() if os.path.exists(NOTES) else ""
    wanted = {PAGE: page(rows, notes)}
    readme = open(README).read()
    wanted[README] = with_summary(readme, summary(rows))
    stale = [p for p, text in wanted.items()
             if not os.path.exists(p) or open(p).read() != text]
    if check:
        if stale:
            names = ", ".join(os.path.relpath(p, ROOT) for p in stale)
            sys.exit(f"{names} differ from benches/results.jsonl; run: python3 benches/performance_page.py")
        return
    for p in stale:
        with open(p, "w") as f:
            f.write(wanted[p])
        print(f"wrote {os.path.relpath(p, ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
