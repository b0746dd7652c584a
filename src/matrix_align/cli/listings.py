"""The tables that ``--list`` options print: ``evaluate --list`` (systems, benchmarks,
metrics, pinned subsets) and ``generate --list-sources`` (the built-in sources), each read
from the library's registry of them."""

from __future__ import annotations


def list_evaluate_choices() -> None:
    from rich.console import Console
    from rich.table import Table

    from matrix_align.evaluate.benchmarks import BENCHMARKS
    from matrix_align.evaluate.metrics import METRICS
    from matrix_align.systems import SYSTEMS

    console = Console()
    systems = Table(title="Systems (--systems)")
    for column in ("name", "what it does", "model calls per answer"):
        systems.add_column(column)
    for system in SYSTEMS.values():
        systems.add_row(system.name, system.summary, system.calls)
    console.print(systems)
    benches = Table(title="Benchmarks (--benchmarks)")
    for column in ("name", "kind", "default metrics", "in the MATRIX paper"):
        benches.add_column(column)
    for bench in BENCHMARKS.values():
        benches.add_row(
            bench.name, bench.kind, ", ".join(bench.metrics), "yes" if bench.paper else ""
        )
    console.print(benches)
    metrics = Table(title="Metrics (--metrics)")
    metrics.add_column("name")
    metrics.add_column("meaning")
    for name, metric in METRICS.items():
        metrics.add_row(name, metric.description)
    console.print(metrics)
    from matrix_align.evaluate.subsets import describe

    subsets = Table(title="Pinned subsets (--subset)")
    for column in ("name", "items", "what it is"):
        subsets.add_column(column)
    for row in describe():
        subsets.add_row(*row)
    console.print(subsets)


def list_sources() -> None:
    from rich.console import Console
    from rich.table import Table

    from matrix_align.data.sources import SOURCES

    table = Table(title="Built-in sources (hub when reachable, else the shipped sample)")
    for column in ("name", "default mode", "licence", "hub dataset", "shipped sample"):
        table.add_column(column)
    for info in SOURCES.values():
        # data_dir tells the subsets of one hub dataset apart (HH-RLHF harmless / helpful).
        part = f"{info.hub.data_dir}, " if info.hub and info.hub.data_dir else ""
        hub = f"{info.hub.path} ({part}{info.hub.split})" if info.hub else "-"
        table.add_row(info.name, info.default_mode, info.license, hub, info.sample_note)
    Console().print(table)
