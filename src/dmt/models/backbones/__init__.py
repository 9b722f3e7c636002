"""Bodies (feature extractors) shared by the models, and the pretrained files they load.

``resnet``: dilated torchvision ResNet bodies, ImageNet weights and the converted COCO DeepLab-v2
file; ``vit``: timm's DINOv2 / DINOv3 encoders and Meta's or timm's weight files; ``weights``: reading a
weights file safely and saying in one line why it does not fit; ``hub``: ``weights: hub``, a model's
published file through the Hugging Face or torch.hub cache. Imports ``dmt.errors``,
``dmt.models.conventions`` and torch / torchvision / timm, never a model file.
"""
