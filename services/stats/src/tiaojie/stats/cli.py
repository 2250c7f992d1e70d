"""Commands stats adds to `tiaojie` (mounted by tiaojie.infra.cli):

tiaojie hotspots detect --counts counts.csv [--method nbcusum|c2]
tiaojie hotspots generate --out counts.csv            synthetic Linyi counts to try it on
tiaojie hotspots evaluate                             the detection benchmark's table
tiaojie rebuild [--into NAME]                         replay the topics, compare figures
"""

from __future__ import annotations

import asyncio
import csv
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

hotspots_app = typer.Typer(help="Hotspot detection (风险热点) over daily counts.", no_args_is_help=True)
COLUMNS = ("date", "county", "township", "category", "count")
OUTPUT = ("date_detected", "county", "township", "category", "method", "score")


def read_counts(path: Path) -> list[tuple[date, str, str | None, str, int]]:
    """Rows of a counts CSV (date,county,township,category,count); raises ValueError."""
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"missing columns: {', '.join(missing)} (need {','.join(COLUMNS)})")
        for line, row in enumerate(reader, start=2):
            try:
                count = int(row["count"])
                if count < 0:
                    raise ValueError("negative count")
                rows.append(
                    (
                        date.fromisoformat(row["date"]),
                        row["county"],
                        row["township"] or "",
                        row["category"],
                        count,
                    )
                )
            except (ValueError, TypeError) as exc:
                raise ValueError(f"line {line}: {exc}") from None
    if not rows:
        raise ValueError("no rows")
    return rows


@hotspots_app.command("detect")
def detect(
    counts: Annotated[
        Path,
        typer.Option(
            "--counts", exists=True, dir_okay=False, help="CSV: date,county,township,category,count"
        ),
    ],
    method: Annotated[
        str, typer.Option(help="nbcusum (seasonal negative-binomial CUSUM) or c2 (EARS C2)")
    ] = "nbcusum",
    since: Annotated[str | None, typer.Option(help="only print alarms detected on or after this day")] = None,
) -> None:
    """Print alarms as CSV: date_detected,county,township,category,method,score.

    Every township × category series of the file is judged day by day on the days before
    (calendar models refitted monthly), with county × category totals as extra series
    (their township column is empty)."""
    from tiaojie.stats.detection import METHODS, Detector, Series, alert_rows

    if method not in METHODS:
        raise typer.BadParameter(
            f"unknown method {method!r}; one of {', '.join(METHODS)}", param_hint="--method"
        )
    try:
        rows = read_counts(counts)
        start = date.fromisoformat(since) if since else None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    detection = Detector(method).run(Series.from_rows(rows))
    writer = csv.DictWriter(sys.stdout, fieldnames=OUTPUT, lineterminator="\n")
    writer.writeheader()
    for row in alert_rows(detection, since=start):
        writer.writerow(row)


@hotspots_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option(help="where to write the counts CSV")],
    first: Annotated[str, typer.Option(help="first day")] = "2024-01-01",
    last: Annotated[str, typer.Option(help="last day")] = "2025-12-31",
    seed: Annotated[int, typer.Option()] = 7,
    outbreaks: Annotated[Path | None, typer.Option(help="also write the planted outbreaks here")] = None,
) -> None:
    """Synthetic daily counts for Linyi's townships, with planted outbreaks in the last year."""
    from tiaojie.runtime.settings import RuntimeSettings
    from tiaojie.stats.synthetic_counts import generate as make
    from tiaojie.stats.synthetic_counts import linyi_townships, to_rows

    start, end = date.fromisoformat(first), date.fromisoformat(last)
    townships = linyi_townships(str(RuntimeSettings().divisions_path))
    data = make(townships, first=start, last=end, seed=seed, outbreaks_from=date(end.year, 1, 1))
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for day, county, township, category, count in to_rows(data.series):
            writer.writerow([day.isoformat(), county, township or "", category, count])
    if outbreaks:
        with outbreaks.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["start", "end", "county", "townships", "category", "size", "extra_cases"])
            for o in data.outbreaks:
                writer.writerow(
                    [o.start, o.end, o.county, " ".join(o.townships), o.category, o.size, o.extra]
                )
    typer.echo(f"wrote {out} ({len(data.series.keys)} series, {len(data.outbreaks)} planted outbreaks)")


@hotspots_app.command("evaluate")
def evaluate(
    target: Annotated[float, typer.Option(help="false alarms per county-month allowed")] = 1.0,
) -> None:
    """The detection benchmark (benchmarks/hotspots): both methods on synthetic Linyi."""
    from tiaojie.runtime.settings import RuntimeSettings
    from tiaojie.stats.evaluation import detection_table, run_detection_benchmark
    from tiaojie.stats.synthetic_counts import linyi_townships

    townships = linyi_townships(str(RuntimeSettings().divisions_path))
    typer.echo(detection_table(run_detection_benchmark(townships, target_false_alarms=target)))


def rebuild_command(
    into: Annotated[
        str, typer.Option(help="database to rebuild into (dropped first)")
    ] = "tiaojie_stats_rebuild",
    keep: Annotated[bool, typer.Option(help="keep the rebuilt database")] = True,
) -> None:
    """Replay every topic from the beginning into fresh projections; compare the figures."""
    from tiaojie.stats.rebuild import rebuild
    from tiaojie.stats.settings import StatsSettings

    result = asyncio.run(rebuild(StatsSettings(), into=into, keep=keep))
    typer.echo(
        f"replayed {result.events} events ({result.skipped} skipped) for {len(result.counties)} counties"
    )
    if result.equal:
        typer.echo("figures equal: summary, open and overdue, alerts, daily counts")
        return
    for line in result.differences:
        typer.echo(f"DIFFERENT {line}")
    raise typer.Exit(1)
