"""The ``bench`` command: composes the command groups, does nothing else."""

from __future__ import annotations

import typer

from bench.commands.compare import compare
from bench.commands.env import env
from bench.commands.plot import plot
from bench.commands.report import report
from bench.commands.sweep import sweep
from bench.commands.verify import verify
from bench.errors import Commands
from model.cache_commands import features_app
from model.commands import evaluate, table1, train
from model.data_commands import data_app
from model.systems_commands import reslstm_sa

app = typer.Typer(cls=Commands, help="mixbench: what sequence mixers cost and what they are worth in SER.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.command("sweep")(sweep)
app.command("report")(report)
app.command("env")(env)
app.command("verify")(verify)
app.command("plot")(plot)
app.command("compare")(compare)
app.command("train")(train)
app.command("evaluate")(evaluate)
app.command("table1")(table1)
app.command("reslstm-sa")(reslstm_sa)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")

if __name__ == "__main__":
    app()
