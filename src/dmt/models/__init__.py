"""Model registry and architectures (WRN-28-2, DeepLab-v2, small nets for tests and demos)."""

from dmt.models.registry import create_model, list_models, model_task, register

__all__ = ["create_model", "list_models", "model_task", "register"]
