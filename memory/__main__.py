"""`python -m tiermem`: the same as the `tiermem` command."""

from ._entry import main

main()
