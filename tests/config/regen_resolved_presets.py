"""Rewrite ``tests/config/resolved_presets.json``: every shipped preset's resolved config.

Run ``python tests/config/regen_resolved_presets.py`` after adding a preset or deliberately
changing one, then review ``git diff tests/config/resolved_presets.json``: it must show exactly
the change you meant (see ``test_resolved_presets.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from dmt.config import config_to_dict, list_presets, load_config

SNAPSHOT = Path(__file__).with_name("resolved_presets.json")


def resolved_presets() -> dict[str, dict]:
    """Preset name -> ``dataclasses.asdict`` of its resolved :class:`ExperimentConfig`."""
    return {name: config_to_dict(load_config(name)) for name in list_presets()}


def to_json(presets: dict[str, dict]) -> str:
    """Stable text (sorted keys) so that a regeneration shows only real changes in git."""
    return json.dumps(presets, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    SNAPSHOT.write_text(to_json(resolved_presets()))
    print(f"wrote {SNAPSHOT} ({len(resolved_presets())} presets)")
