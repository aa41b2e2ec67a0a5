"""Logging: readable text or one JSON object per line, secrets redacted."""
from __future__ import annotations

import json
import logging
import sys
import time

from .adapters.secrets import RedactingFilter, SecretSource


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (and redacted) by RedactingFilter
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def setup(level: str = "info", fmt: str = "text", secrets: SecretSource | None = None) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if secrets is not None:
        handler.addFilter(RedactingFilter(secrets))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
