"""``python -m model train|evaluate|data synth|features extract``: the model commands without the rest of ``bench``.

This is what ``torchrun`` launches: ``torchrun --nproc-per-node 2 -m model train --corpus ... --out ...``.
"""

import typer

from bench.errors import Commands
from model.cache_commands import features_app
from model.commands import evaluate, train
from model.data_commands import data_app

app = typer.Typer(cls=Commands, help="mixbench model commands.", no_args_is_help=True, pretty_exceptions_enable=False)
app.command("train")(train)
app.command("evaluate")(evaluate)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")

if __name__ == "__main__":
    app()
