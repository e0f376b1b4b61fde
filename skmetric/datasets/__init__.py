"""Data sets, shaped like :mod:`sklearn.datasets`: loaders and generators.

Loaders (``load_*``) return image arrays ready for the pipelines:

* :func:`load_digits_images`: scikit-learn's digits as (N, 8, 8) images
  (ships with scikit-learn, no download).
* :func:`load_mnist`, :func:`load_fashion_mnist`, :func:`load_cifar10`,
  :func:`load_omniglot`: read through torchvision's data sets from
  ``data_home`` (:func:`get_data_home`: ``$SKMETRIC_DATA`` or
  ``~/skmetric_data``), in torchvision's on-disk layout; downloaded only with
  ``download=True``. Missing files without ``download``, or an unreachable
  host, raise within seconds with a message that says where the files go.

Generators (``make_*``):

* :func:`make_font_glyphs`: labelled letter classes drawn from font files,
  in the digits' 8x8 format (a many-class source domain for transfer to the
  digits); :func:`default_fonts` lists the font files it uses by default.
* :func:`make_elongated_classes`: classes with different elongated
  covariances around one centre, where one metric per class
  (:class:`skmetric.MultiMetricLMNN`) beats a single metric.

Images come back as arrays, labels as int64. Importing this package does not
import torch.
"""

from ._generators import make_elongated_classes
from ._glyphs import default_fonts, make_font_glyphs
from ._loaders import (
    get_data_home,
    load_cifar10,
    load_digits_images,
    load_fashion_mnist,
    load_mnist,
    load_omniglot,
)

__all__ = [
    "default_fonts",
    "get_data_home",
    "load_cifar10",
    "load_digits_images",
    "load_fashion_mnist",
    "load_mnist",
    "load_omniglot",
    "make_elongated_classes",
    "make_font_glyphs",
]
