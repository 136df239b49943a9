"""One module per command group; ``bench.cli`` composes them."""
