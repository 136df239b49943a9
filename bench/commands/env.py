"""``bench env``: what a results file's header would record on this machine."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from bench.commands.options import Device, check_device
from bench.sysinfo import environment


def env(device: Device = None, as_json: bool = False) -> None:
    """Show versions, device, clocks and the code's identity, as recorded in every results file's header."""
    info = environment(check_device(device))
    if as_json:
        print(json.dumps(info, indent=2))
        return
    table = Table(title="bench env", show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")  # hashes whole, not cut with an ellipsis
    for key, value in info.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    Console().print(table)
