"""``python -m digitlab`` runs the ``digitlab`` command."""

from digitlab.cli import main

main()
