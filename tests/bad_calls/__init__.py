"""Malformed calls across kdlib's public API, one table per module group: ``tests/bad_calls/<name>.py`` holds
``BAD_CALLS``, rows of (name, call, expected error, fragment the message must contain).
"""
import importlib
from pathlib import Path

TABLES = {path.stem: importlib.import_module(f"{__name__}.{path.stem}").BAD_CALLS
          for path in sorted(Path(__file__).parent.glob("*.py")) if path.stem != "__init__"}
BAD_CALLS = [(f"{table}: {name}", call, error, fragment)
             for table, rows in TABLES.items() for name, call, error, fragment in rows]
