"""The ``autogai`` command. One verb per job; each verb lives in the CLI module of its layer.

Every error a user can cause ends as one line on stderr and a non-zero exit, never a traceback:
:class:`~autogai.core.errors.AutoGAIError` exits 1, usage errors exit 2, an interrupt exits 130.
"""

from __future__ import annotations

import importlib
import os
import shlex
import signal
import sys
import threading
from typing import Any

import typer
from typer.exceptions import TyperException

from autogai.core.errors import AutoGAIError
from autogai.core.logging import configure_logging, mask_secrets
from autogai.core.text import escape_control

app = typer.Typer(
    name="autogai",
    help="LLM-assisted reward design and AutoRL for GAI-enhanced TD3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Each module defines ``register(app)``; the order is the order of ``autogai --help``.
_COMMAND_MODULES = (
    "autogai.cli.search_commands",
    "autogai.cli.inspect_commands",
    "autogai.cli.train_commands",
    "autogai.cli.reward_commands",
    "autogai.cli.kb_commands",
    "autogai.cli.propose_commands",
    "autogai.cli.env_commands",
)


@app.callback()
def _root(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More log output (-v info, -vv debug)."
    ),
) -> None:
    configure_logging(verbose)


class CommandLoadError(Exception):
    """A command module failed to import: the installation is broken, and no command may go missing."""


def _register_commands() -> None:
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a missing dependency or a broken module: say which, never skip it
            raise CommandLoadError(f"cannot load {module_name}: {type(exc).__name__}: {exc}") from exc
        module.register(app)


_INTERRUPT_HINTS = {
    "search": "resume with",
    "worker": "rejoin with",
    "train": "training starts again from step 0 with",
}
"""What an interrupted command prints before the command line that continues it."""


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM from a scheduler, SIGINT from Ctrl-C) turned into an interrupt that unwinds the
    command cleanly (workers hand their trials back, files are closed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _install_stop_handlers() -> dict[int, Any]:
    """The first SIGTERM or SIGINT interrupts the command; later ones are ignored, so they cannot break off
    the clean-up the first one started. Returns the handlers it replaced (``main`` puts them back)."""
    received: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signum)
        if len(received) == 1:
            raise Stopped(signum)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # only the main thread may handle signals
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
    return previous


def _interrupt_line(argv: list[str], signum: int = signal.SIGINT) -> str:
    """``autogai: interrupted; resume with: autogai search ...`` for the commands that can be continued
    (``stopped by SIGTERM`` when a scheduler stopped it)."""
    what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    command = next((a for a in argv if not a.startswith("-")), "")
    hint = _INTERRUPT_HINTS.get(command)
    if hint is None:
        return f"autogai: {what}"
    return f"autogai: {what}; {hint}: {escape_control(shlex.join(['autogai', *argv]))}"


def _empty_argument(argv: list[str]) -> str | None:
    """The error line for an empty argument (``--llm ''``, ``--run-dir=``), which must never quietly mean
    the default or the current directory; ``None`` when there is none."""
    for index, arg in enumerate(argv):
        if arg.startswith("--") and arg.endswith("="):
            return f"autogai: error: {escape_control(arg[:-1])} is empty; leave the option out to use the default"
        if arg == "":
            before = argv[index - 1] if index else ""
            if before.startswith("-"):
                return f"autogai: error: {escape_control(before)} is empty; leave the option out to use the default"
            return f"autogai: error: argument {index + 1} is empty"
    return None


def _usage_error_line(exc: TyperException) -> str:
    """A usage error as the program's own one line (the usage block is for --help)."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return f"autogai: error: {escape_control(message)}{where}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download weights at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb must not phone home
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        _register_commands()
    except CommandLoadError as exc:
        print(f"autogai: error: {escape_control(str(exc))}", file=sys.stderr)
        return 1
    empty = _empty_argument(args)
    if empty is not None:
        print(empty, file=sys.stderr)
        return 1
    command = typer.main.get_command(app)
    previous_handlers = _install_stop_handlers()
    try:
        return _run(command, args)
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


def _run(command: Any, args: list[str]) -> int:
    """The parsed command, every outcome turned into an exit code and at most one line on stderr."""
    # Click's own main() would turn Ctrl-C into a silent exit 130 and print usage blocks for usage errors;
    # running the parsed command here keeps every outcome to one line of our own.
    try:
        with command.make_context("autogai", args) as ctx:
            result = command.invoke(ctx)
    except typer.Exit as exc:
        return exc.exit_code
    except TyperException as exc:  # usage errors (typer vendors click; this is its public base class)
        if exc.format_message().startswith("Usage:"):  # no arguments: the help is the answer
            print(exc.format_message(), file=sys.stderr)
        else:
            print(_usage_error_line(exc), file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Stopped) else int(signal.SIGINT)
        print(_interrupt_line(args, signum), file=sys.stderr)
        return 128 + signum
    except AutoGAIError as exc:
        print(f"autogai: error: {escape_control(mask_secrets(str(exc)))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`autogai leaderboard RUN | head -3`): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 1
    except (
        OSError
    ) as exc:  # the machine refused (disk full, permissions) somewhere the library did not expect
        where = f": {exc.filename}" if exc.filename else ""
        print(f"autogai: error: {escape_control(f'{exc.strerror or exc}{where}')}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
