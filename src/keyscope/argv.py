"""The command-line parser of keyscope's ``python -m`` services (the sponsor, the local stack)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

__all__ = ["ArgumentParser"]


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, refusing an option written ``--name=--``: argparse reads that ``--`` as the end of the
    options and gives the option an empty list, without running its type, where one value was expected (a port of
    ``[]`` then failed far from the command line, or a paymaster's address was no address at all)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            value: Any = getattr(parsed, action.dest, None)
            if (
                action.option_strings
                and action.nargs is None
                and value == []
                and not isinstance(action.default, list)
            ):
                self.error(
                    f"argument {'/'.join(action.option_strings)}: expected one value, got none ('--' ends the options "
                    "there): give the value itself"
                )
        return parsed, extras
