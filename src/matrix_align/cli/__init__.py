"""The command-line layer: one module per command, each a thin shell over the library."""
