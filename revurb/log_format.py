"""`--log-format json`: one JSON object a line, for log shippers (time, level, logger, message,
and the socket id and app when a log call names them with `extra=`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from revurb.wire import frames

#: Record attributes copied into the object when a log call sets them (`extra={"socket_id": ...}`).
CONTEXT_FIELDS = ("socket_id", "app")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return frames.dumps(entry)
