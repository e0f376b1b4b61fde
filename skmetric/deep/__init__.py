"""Deep components: frozen-CNN features, fine-tuning, Siamese networks.

These modules need the 'deep' extra (torch, torchvision); they import torch
lazily so that ``import skmetric.deep`` alone stays cheap.
"""
