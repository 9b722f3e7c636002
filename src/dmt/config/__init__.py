"""Typed experiment configuration, presets and overrides."""

from dmt.config.loader import config_diff, config_to_dict, dump_config, list_presets, load_config
from dmt.config.schema import ExperimentConfig

__all__ = ["ExperimentConfig", "config_diff", "config_to_dict", "dump_config", "list_presets", "load_config"]
