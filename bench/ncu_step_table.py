#!/usr/bin/env python3
"""ncu_step_table.py CSV [CSV...] — per-kernel GPU time of one profiled step, from
`ncu --csv --metrics gpu__time_duration.sum` output (test_gen --kprofile): kernels grouped by name
(template arguments cut), count, total µs, share; the sum of kernel times last."""
import csv, io, re, sys
from collections import OrderedDict

for path in sys.argv[1:]:
    text = open(path, errors="replace").read()
    start = text.find('"ID"')
    if start < 0:
        print(f"{path}: no ncu table"); continue
    rows = list(csv.DictReader(io.StringIO(text[start:])))
    agg = OrderedDict()
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum": continue
        name = re.sub(r"\(.*", "", r["Kernel Name"]).replace("void ", "")
        name = re.sub(r"(?<=\w)<.*", "", name)[:48]  # template arguments cut, "<unnamed>::" kept
        v = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "ns")
        us = v / 1000 if unit in ("nsecond", "ns") else v if unit in ("usecond", "us") else v * 1000
        c, t = agg.get(name, (0, 0.0))
        agg[name] = (c + 1, t + us)
    tot = sum(t for _, t in agg.values())
    print(f"== {path}: {sum(c for c, _ in agg.values())} kernels, {tot:.1f} us of kernel time")
    for name, (c, t) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:48s} {c:5d} x {t / c:8.2f} us = {t:9.1f} us ({100 * t / tot:4.1f} %)")
