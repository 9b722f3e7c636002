"""Typed experiment configuration: dataclasses, YAML presets with ``base:`` inheritance, overrides, validation.

The configuration is translated here, at the edge; the layers below take typed arguments.
Imports ``errors`` only.
"""

from dmt.config.loader import config_diff, config_to_dict, dump_config, list_presets, load_config
from dmt.config.schema import ExperimentConfig

__all__ = ["ExperimentConfig", "config_diff", "config_to_dict", "dump_config", "list_presets", "load_config"]
