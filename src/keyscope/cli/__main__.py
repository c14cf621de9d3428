"""``python -m keyscope.cli``: the ``keyscope`` command."""

from .commands import main

main()
