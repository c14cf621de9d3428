"""``python -m keyscope``: the ``keyscope`` command (as ``python -m keyscope.cli``), for a virtual environment whose
``bin`` folder is not on PATH."""

from .cli.commands import main

if __name__ == "__main__":
    main()
