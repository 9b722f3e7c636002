"""Bodies (feature extractors) shared by the models, and the pretrained files they load.

``resnet``: dilated torchvision ResNet bodies, ImageNet weights and the converted COCO DeepLab-v2
file. Imports ``dmt.errors`` and torch / torchvision, never a model file.
"""
