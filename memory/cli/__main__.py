"""`python -m tiermem.cli`: the same as the `tiermem` command."""

from . import main

main()
