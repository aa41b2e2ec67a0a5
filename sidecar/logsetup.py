"""Logging: readable text or one JSON object per line, secrets redacted.

Text (`log.format: text`):

    2026-01-01 12:00:00,000 INFO flow_gitops.sync: sync job=7 trigger=timer result=succeeded commit=1a2b3c4d duration=0.412s

JSON (`log.format: json`), one object per line with `ts`, `level`, `logger`, `msg`; the
per-sync line also carries its facts as fields, so log pipelines need no parsing:

    {"ts": "…", "level": "info", "logger": "flow_gitops.sync", "msg": "sync job=7 …",
     "event": "sync", "job": 7, "trigger": "timer", "result": "succeeded", "commit": "1a2b3c4d",
     "duration_s": 0.412}

A failed sync adds `code` (the reason code) and `message`; a result the engine
qualifies ("succeeded (no flow changes)") becomes `result` plus `note`. The fields are read from the
message after redaction, so they can never carry more than the message itself.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time

from .adapters.secrets import RedactingFilter, SecretSource

# The engine's one line per sync job (sidecar/engine.py):
#   sync job=N trigger=T result=R [(note)] [code=C] [commit=SHA8] duration=1.234s [message=…]
_SYNC_LINE = re.compile(
    r"^sync job=(?P<job>\d+) trigger=(?P<trigger>\S+) result=(?P<result>.+?)"
    r"(?: code=(?P<code>\S+))?(?: commit=(?P<commit>\S*))? duration=(?P<duration>\d+(?:\.\d+)?)s"
    r"(?: message=(?P<message>.*))?$",
    re.DOTALL,
)


QUIET_LIBRARIES = ("watchdog", "urllib3", "websocket", "git")


def sync_fields(message: str) -> dict | None:
    """The structured fields of a per-sync log line, or None for any other message."""
    m = _SYNC_LINE.match(message)
    if m is None:
        return None
    out: dict = {"event": "sync", "job": int(m["job"]), "trigger": m["trigger"], "result": m["result"]}
    # "succeeded (no flow changes)" → result "succeeded", note "no flow changes"
    noted = re.fullmatch(r"(\w+) \((.+)\)", m["result"])
    if noted:
        out["result"], out["note"] = noted.group(1), noted.group(2)
    if m["code"] is not None:
        out["code"] = m["code"]
    if m["commit"] is not None:
        out["commit"] = m["commit"]
    out["duration_s"] = float(m["duration"])
    if m["message"] is not None:
        out["message"] = m["message"]
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": msg,
        }
        fields = sync_fields(msg) if msg.startswith("sync job=") else None
        if fields:
            out.update(fields)
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
    # Libraries' own debug chatter (watchdog logs every inotify event, i.e. every secret
    # read) would drown the sidecar's debug lines: they log from INFO up.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
