"""``python -m edgesmith`` runs the CLI (used on deploy targets)."""

from edgesmith.cli import main

main()
