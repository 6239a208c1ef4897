"""``python -m datatrust`` runs the command line."""

from datatrust.cli import main

main()
