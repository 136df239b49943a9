"""One error style for every command: a user's mistake is one line on stderr, ``bench: error: ...``, exit code 2.

``fail`` is what our commands call; ``Commands`` is the top-level group of ``bench`` (and of ``python -m
model``), which prints click's own usage errors (a missing option, a value of the wrong type, an unknown
choice or command) the same way instead of typer's usage panel. Imports only typer, so the model package's
commands use it too.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

PREFIX = "bench: error: "


def _click_class(name: str) -> type:
    """click's exception class as typer raises it: typer >= 0.24 carries its own copy of click."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


ClickException, UsageError = _click_class("ClickException"), _click_class("UsageError")


def fail(message: str) -> NoReturn:
    """A user's mistake: one line on stderr, exit code 2 (as for any bad command-line value)."""
    typer.echo(PREFIX + one_line(message), err=True)
    raise typer.Exit(2)


def one_line(message: str) -> str:
    """Whitespace (newlines included) collapsed, so an error is always a single line."""
    return " ".join(str(message).split())


def usage_line(error: Exception) -> str:
    """click's error as our line, pointing to the command's help when click knows the command."""
    context = getattr(error, "ctx", None)
    hint = f" (see: {context.command_path} --help)" if isinstance(error, UsageError) and context else ""
    return PREFIX + one_line(error.format_message()) + hint


class Commands(TyperGroup):
    """The app's group: runs click in non-standalone mode and reports its usage errors in our style."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as error:
            if type(error).__name__ != "NoArgsIsHelpError":  # that one printed the help already
                typer.echo(usage_line(error), err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # Non-standalone click returns an Exit's code, or the command's own return value (None: success).
        sys.exit(code if isinstance(code, int) else 0)
