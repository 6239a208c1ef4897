"""Data-use decision latency on the embedded Rego engine (regopy), against a baseline.

    python bench/policy.py [--decisions N]

Prints the bundle compile time, then per-decision latency for each case of the decision
table, against the baseline of building and serialising the same input (json.dumps),
measured in the same run. (Enforcement overhead on a planning query lands with the
policy wiring, issue 6.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from datatrust.policies._engines import EmbeddedRegoEngine
from datatrust.policies.documents import demo_agreements, demo_register, rego_data

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=2000)
    args = parser.parse_args()
    cases = json.loads((ROOT / "policies" / "datause" / "decision_table.json").read_text())["cases"]
    documents = rego_data(demo_register(), demo_agreements())

    started = time.perf_counter()
    engine = EmbeddedRegoEngine(ROOT / "policies" / "datause", documents)
    engine.decide(cases[0]["input"])
    print(f"compile bundle + first decision  {(time.perf_counter() - started) * 1000:8.2f} ms")

    decision_us, baseline_us = [], []
    for number in range(args.decisions):
        request = cases[number % len(cases)]["input"]
        started = time.perf_counter()
        json.dumps(request, ensure_ascii=False)
        baseline_us.append((time.perf_counter() - started) * 1e6)
        started = time.perf_counter()
        engine.decide(request)
        decision_us.append((time.perf_counter() - started) * 1e6)
    p50, base = statistics.median(decision_us), statistics.median(baseline_us)
    p95 = sorted(decision_us)[int(len(decision_us) * 0.95)]
    print(f"decision (compiled bundle)       p50 {p50:8.1f} us   p95 {p95:8.1f} us")
    print(f"baseline (json.dumps of input)   p50 {base:8.1f} us")
    print(f"decision / baseline              {p50 / base:8.0f}x")


if __name__ == "__main__":
    main()
