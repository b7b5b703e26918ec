"""`python -m meshplane` runs the CLI (the same as the `meshplane` console script)."""

from meshplane.cli import main

main()
