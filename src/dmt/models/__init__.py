"""The model registry (``create_model``, ``list_models``) and the architectures: one file per model family.

``backbones/`` holds the bodies shared by several models (ResNets, timm's DINOv2 / DINOv3 ViTs) and
the pretrained files they load (a local file, or ``hub``: the model's published file);
``timm_classifier`` every timm classification model (``timm/<name>``); ``heads/`` the segmentation
heads (DeepLab's, DPT); ``files`` the final model files (weights plus what rebuilds the model).
Imports ``engine.checkpoint`` (atomic safetensors), ``errors`` and torch / torchvision / timm.
"""

# importing the model modules runs their @register decorators
from dmt.models import deeplabv2, deeplabv3plus, dpt, small, small_seg, timm_classifier, wrn  # noqa: F401
from dmt.models.registry import (
    create_model,
    is_model,
    list_families,
    list_models,
    model_task,
    register,
    register_family,
    smoke_network,
    smoke_standin,
)

__all__ = ["create_model", "is_model", "list_families", "list_models", "model_task", "register", "register_family",
           "smoke_network", "smoke_standin"]
