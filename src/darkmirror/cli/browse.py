"""``darkmirror view`` and ``darkmirror compare``: reading finished runs.

Neither loads a model, a judge or a scorer: both read the run directories' files
(``docs/view-and-compare.md``).
"""

from __future__ import annotations

from pathlib import Path

import click

from darkmirror.cli.app import main


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but a loopback address lets other machines read "
    "the runs' answers.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 takes any free port (the URL is printed).",
)
def view(runs: tuple[Path, ...], host: str, port: int) -> None:
    """Serve the pages of one or several run (or sweep) directories, read-only.

    Each run's page is report.html's page, built from the run's files when first asked
    for and again when report.md, rows.jsonl or a plot changes; nothing is written into
    the run. Several runs get an index page. Ctrl-C stops the server.
    """
    from darkmirror.report.server import is_loopback, make_server

    if not is_loopback(host):
        click.echo(
            f"warning: listening on {host}, not a loopback address: anyone who can reach "
            "this machine can read these runs' answers",
            err=True,
        )
    server = make_server(list(runs), host, port)
    click.echo(f"serving {len(runs)} run(s) at {server.url} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()


@main.command()
@click.argument("run_a", type=click.Path(file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for compare.md, compare.html and compare.json "
    "(default: runs/compare-<A>-vs-<B>).",
)
def compare(run_a: Path, run_b: Path, out: Path | None) -> None:
    """Compare run B with run A: every figure both share (misaligned rate, coherence, mean
    toxicity, per group or model), B - A with its 95% interval and p-value.

    The runs must be of the same experiment or share questions, and be scored by the same
    judge; otherwise the command says what differs and exits with status 2. Prints the
    Markdown and writes compare.md, compare.json and compare.html (run B's page with the
    comparison).
    """
    from darkmirror.report.compare import compare_runs, comparison_markdown, write_comparison

    comparison = compare_runs(run_a, run_b)
    out = out or Path("runs") / f"compare-{comparison.a.name}-vs-{comparison.b.name}"
    files = write_comparison(comparison, out)
    click.echo(comparison_markdown(comparison))
    click.echo(f"written: {files.markdown}, {files.html}, {files.json}", err=True)
