"""Library logging: modules use ``logging.getLogger(__name__)``; only the CLI calls :func:`configure_logging`."""

from __future__ import annotations

import logging
import re

_LIBRARY_LOGGER = "autogai"

# Anything that looks like an API key is masked before a record is emitted: keys come from the
# environment and must never reach logs (see README, "Secrets").
_SECRET_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|(?i:api[_-]?key)\s*[=:]\s*\S+|Bearer\s+\S+)")


class SecretMaskingFilter(logging.Filter):
    """Masks API-key-like substrings in log messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRET_PATTERN.sub("***", message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def mask_secrets(text: str) -> str:
    """Return ``text`` with API-key-like substrings replaced by ``***``."""
    return _SECRET_PATTERN.sub("***", text)


def configure_logging(verbosity: int = 0) -> None:
    """Set up a stderr handler for the ``autogai`` logger. 0 = warnings, 1 = info, 2+ = debug."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logger = logging.getLogger(_LIBRARY_LOGGER)
    logger.setLevel(level)
    if not any(getattr(h, "_autogai", False) for h in logger.handlers):
        stream_handler = logging.StreamHandler()
        stream_handler._autogai = True  # type: ignore[attr-defined]
        stream_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream_handler.addFilter(SecretMaskingFilter())
        logger.addHandler(stream_handler)
    for handler in logger.handlers:
        handler.setLevel(level)


logging.getLogger(_LIBRARY_LOGGER).addHandler(logging.NullHandler())
