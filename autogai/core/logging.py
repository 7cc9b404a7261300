"""Library logging: modules use ``logging.getLogger(__name__)``; only the CLI calls :func:`configure_logging`."""

from __future__ import annotations

import logging
import re

from autogai.core.text import escape_control

_LIBRARY_LOGGER = "autogai"

# Anything that looks like an API key is masked before a record is emitted: keys come from the
# environment and must never reach logs (see README, "Secrets").
_SECRET_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|(?i:api[_-]?key)\s*[=:]\s*\S+|Bearer\s+\S+)")
# The password of a URL's user info: scheme://user:PASSWORD@host
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)([^\s@]*)(@)")
# Query or fragment parameters that carry credentials: ?token=..., &api_key=..., &sig=...
_URL_CREDENTIAL_PARAMETER = re.compile(
    r"([?&;#][^=&#;\s]*(?:key|token|secret|passw|pwd|auth|sig|credential|session)[^=&#;\s]*=)([^&#;\s]+)",
    re.IGNORECASE,
)


class SecretMaskingFilter(logging.Filter):
    """Makes records safe to emit: API-key-like substrings and URL credentials masked, control characters
    (terminal escape codes from program text) escaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = escape_control(mask_secrets(message), keep_newlines=True)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def mask_secrets(text: str) -> str:
    """``text`` with API-key-like substrings, URL passwords (``user:***@``) and credential-carrying URL
    parameters (``?token=***``) masked."""
    text = _SECRET_PATTERN.sub("***", text)
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    return _URL_CREDENTIAL_PARAMETER.sub(r"\1***", text)


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
