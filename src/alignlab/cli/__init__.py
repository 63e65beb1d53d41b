"""The `alignlab` command line."""
