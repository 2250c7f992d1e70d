"""Forecast benchmark: four-week forecasts per county × category on held-out synthetic
history for Linyi, against the seasonal-naive baseline (same week a year earlier), by
MASE, with the coverage of the 80% and 95% prediction intervals.

    uv run python benchmarks/forecast/evaluate.py [--origins 12]
"""

from __future__ import annotations

import argparse
import time

from tiaojie.runtime.settings import RuntimeSettings
from tiaojie.stats.evaluation import forecast_table, run_forecast_benchmark
from tiaojie.stats.synthetic_counts import linyi_townships


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origins", type=int, default=12, help="forecast origins, 4 weeks apart")
    parser.add_argument("--seed", type=int, default=303)
    args = parser.parse_args()
    started = time.monotonic()
    townships = linyi_townships(str(RuntimeSettings().divisions_path))
    print(forecast_table(run_forecast_benchmark(townships, seed=args.seed, origins=args.origins)))
    print(f"\n({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
