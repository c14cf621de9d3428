"""A Ctrl-C while the ``keyscope`` command is still starting says so in one line, not in a traceback.

The command imports the SDK before its own code runs, which takes about a second; an interrupt then would
otherwise end with Python's traceback of the import. :func:`quiet_interrupts_of_the_command` is called
first thing when the package is imported: when the process is one of keyscope's commands (the ``keyscope``
script, ``python -m keyscope`` or ``python -m keyscope.<command>``) it has an uncaught ``KeyboardInterrupt``
said as one line on stderr, and the process still ends by the interrupt (a shell sees status 130). A
program that imports keyscope as a library keeps Python's own handling.
"""

import sys
from pathlib import PurePath
from types import TracebackType

COMMAND = "keyscope"
INTERRUPTED = "keyscope: interrupted; nothing more was done\n"


def launched_as_command(argv: list[str], orig_argv: list[str]) -> bool:
    """Whether the process was started as one of keyscope's commands: ``orig_argv`` the interpreter's own
    arguments (``python -m keyscope.local``), ``argv`` the script's (``.../bin/keyscope``)."""
    if "-m" in orig_argv:
        index = orig_argv.index("-m")
        module = orig_argv[index + 1] if index + 1 < len(orig_argv) else ""
        return module.split(".")[0] == COMMAND
    return bool(argv) and PurePath(argv[0]).name in (COMMAND, f"{COMMAND}.exe")


def quiet_interrupts_of_the_command() -> None:
    """Say an uncaught ``KeyboardInterrupt`` in one line when this process is one of keyscope's commands;
    other exceptions go to the hook that was there before."""
    if not launched_as_command(list(getattr(sys, "argv", [])), list(getattr(sys, "orig_argv", []))):
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.stderr.write(INTERRUPTED)
            return
        previous(kind, value, trace)

    sys.excepthook = hook


quiet_interrupts_of_the_command()
