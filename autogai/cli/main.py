"""The ``autogai`` command. One verb per job; each verb lives in the CLI module of its layer.

Every error a user can cause ends as one line on stderr and a non-zero exit, never a traceback:
:class:`~autogai.core.errors.AutoGAIError` exits 1, usage errors exit 2, an interrupt exits 130.
"""

from __future__ import annotations

import importlib
import os
import sys

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


def _register_commands() -> None:
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a layer whose commands are not built yet
                continue
            raise
        module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download weights at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb must not phone home
    _register_commands()
    try:
        result = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except TyperException as exc:  # usage errors (typer vendors click; this is its public base class)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"autogai: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        print("autogai: interrupted", file=sys.stderr)
        return 130
    except AutoGAIError as exc:
        print(f"autogai: error: {escape_control(mask_secrets(str(exc)))}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
