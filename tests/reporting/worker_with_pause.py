"""A real Celery worker for the zero-loss test, slowed so that a kill lands inside a batch.

Each processing batch sleeps PAUSE seconds after its inserts, inside its transaction, so
`kill -9` at any moment most likely interrupts work that has written rows but not committed.
Run as a script: `python tests/reporting/worker_with_pause.py` (DATABASE_URL etc. from the env).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from config.celery import app  # noqa: E402
from reporting import processing  # noqa: E402

_real = processing._process_rows


def _slow(rows: Any) -> Any:
    result = _real(rows)
    time.sleep(float(os.environ.get("PAUSE", "0.3")))
    return result


processing._process_rows = _slow  # type: ignore[assignment]

if __name__ == "__main__":
    app.worker_main(
        ["worker", "-P", "solo", "-l", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    )
