"""The ``bench`` command: composes the command groups, does nothing else."""

from __future__ import annotations

import typer

from bench.commands.compare import compare
from bench.commands.env import env
from bench.commands.plot import plot
from bench.commands.report import report
from bench.commands.sweep import sweep
from bench.commands.verify import verify

app = typer.Typer(help="mixbench: what sequence mixers cost and what they are worth in SER.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.command("sweep")(sweep)
app.command("report")(report)
app.command("env")(env)
app.command("verify")(verify)
app.command("plot")(plot)
app.command("compare")(compare)

if __name__ == "__main__":
    app()
