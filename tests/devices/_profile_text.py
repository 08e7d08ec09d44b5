"""Profiles written from TOML text for the device-model tests."""
from __future__ import annotations

from pathlib import Path

import devices


def load_text(tmp_path: Path, text: str) -> devices.Profile:
    """``devices.load`` of ``text`` written to a new file in ``tmp_path`` (a fresh name per call, so a
    test can load several profiles)."""
    path = tmp_path / f"p{len(list(tmp_path.iterdir()))}.toml"
    path.write_text(text)
    return devices.load(str(path))
