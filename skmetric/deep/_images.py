"""Image batches: the one place image inputs are checked and normalised.

Accepted inputs, for every deep component:

* numpy arrays of shape (N, H, W) (grayscale), (N, H, W, C) or (N, C, H, W)
  with C in {1, 3};
* dtype uint8 with values in [0, 255], or float with values in [0, 1];
* a list (or tuple) of image file paths, read with Pillow.

Output: a float32 array of shape (N, C, H, W) with values in [0, 1].

A 3-D array whose last axis has 1 or 3 entries, e.g. (32, 32, 3), is one
image without a batch axis, not 32 images of 32 x 3 pixels: it is rejected
with a ValueError that says so (pass ``X[None]``). A list of arrays of
different shapes is rejected with a ValueError naming the shapes.

This module imports torch only in :func:`random_affine`.
"""

import os

import numpy as np

__all__ = ["as_image_batch", "is_image_input", "load_image_files", "random_affine", "stack_samples"]

_CHANNELS = (1, 3)


def stack_samples(X):
    """A list of per-sample arrays -> one array, with a clear error for ragged shapes.

    Anything else (an array, a list of paths, a list of numbers) is returned as is.
    """
    if isinstance(X, (list, tuple)) and len(X) and hasattr(X[0], "shape"):
        shapes = sorted({tuple(np.shape(x)) for x in X})
        if len(shapes) > 1:
            raise ValueError(
                f"Samples have inconsistent shapes {shapes[:4]}; every image (or "
                f"feature vector) must have the same shape, expected {tuple(np.shape(X[0]))} "
                "as the first one has. Resize the images to a common size first."
            )
        return np.stack([np.asarray(x) for x in X])
    return X


def is_image_input(X):
    """True for a list of paths or an array with 3 or 4 dimensions."""
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and isinstance(X[0], (str, os.PathLike))
    return getattr(X, "ndim", None) in (3, 4)


def load_image_files(paths, size=None, mode=None):
    """Read image files into a uint8 array of shape (N, H, W, C).

    Parameters
    ----------
    paths : sequence of str or PathLike
    size : (height, width) or None
        Resize every image to this size. Without it, all images must have the
        same size.
    mode : {'RGB', 'L'} or None
        Pillow mode to convert to; None converts to RGB unless every image
        is grayscale.
    """
    from PIL import Image

    if len(paths) == 0:
        raise ValueError("Got an empty list of image paths.")
    images = []
    for p in paths:
        if not os.path.isfile(p):
            raise ValueError(f"Image file not found: {p!r}.")
        with Image.open(p) as im:
            images.append(im.copy())
    if mode is None:
        mode = "L" if all(im.mode in ("L", "1", "I;16") for im in images) else "RGB"
    arrays = []
    for p, im in zip(paths, images):
        im = im.convert(mode)
        if size is not None:
            im = im.resize((int(size[1]), int(size[0])), Image.BILINEAR)
        arrays.append(np.asarray(im, dtype=np.uint8))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(
            f"Images in the list have different sizes {sorted(shapes)[:4]}; pass an "
            "input size to resize them to a common size."
        )
    batch = np.stack(arrays)
    return batch[..., None] if batch.ndim == 3 else batch


def _to_nchw(X):
    if X.ndim == 3:
        if X.shape[-1] in _CHANNELS:
            raise ValueError(
                f"An array of shape {X.shape} is one image (H, W, C) without a batch axis, "
                "not a batch of grayscale images: pass X[None] for one image, or "
                "(N, H, W, C) / (N, C, H, W) arrays."
            )
        return X[:, None, :, :]
    if X.ndim != 4:
        raise ValueError(
            "Images must have shape (N, H, W), (N, H, W, C) or (N, C, H, W); "
            f"got an array of shape {X.shape}."
        )
    if X.shape[-1] in _CHANNELS:
        return np.moveaxis(X, -1, 1)
    if X.shape[1] in _CHANNELS:
        return X
    raise ValueError(
        f"Images of shape {X.shape} have no channel axis of size 1 or 3 (grayscale "
        "or RGB) in position 1 or 3."
    )


def as_image_batch(X, size=None, copy=True):
    """Validate images and return float32 (N, C, H, W) in [0, 1].

    Parameters
    ----------
    X : array-like or list of paths
        See the module docstring for the accepted forms.
    size : (height, width) or None
        Only used to resize files from a list of paths; arrays are resized by
        the model's own transforms.
    copy : bool, default=True
        The result never shares memory with X when True.

    Returns
    -------
    images : ndarray of shape (N, C, H, W), float32

    Raises
    ------
    ValueError
        Empty input, wrong number of dimensions or channels, NaN/inf, values
        outside [0, 255] for integers or [0, 1] for floats, a missing file,
        files of mixed size without ``size``.
    """
    if isinstance(X, (list, tuple)) and len(X) and isinstance(X[0], (str, os.PathLike)):
        X = load_image_files(X, size=size)
    X = np.asarray(stack_samples(X))
    if X.size == 0 or X.shape[0] == 0:
        raise ValueError(f"Got an empty image array of shape {X.shape}: 0 samples.")
    if X.dtype.kind == "b" or X.dtype.kind not in "uif":
        raise ValueError(f"Images must be numeric (uint8 or float), got dtype {X.dtype}.")
    X = _to_nchw(X)
    if X.dtype.kind in "ui":
        if X.min() < 0 or X.max() > 255:
            raise ValueError("Integer images must have values in [0, 255].")
        out = X.astype(np.float32) / np.float32(255.0)
    else:
        if not np.all(np.isfinite(X)):
            raise ValueError("Images contain NaN or infinite values.")
        if X.min() < 0.0 or X.max() > 1.0 + 1e-6:
            raise ValueError(
                f"Float images must have values in [0, 1]; got [{X.min():.3g}, {X.max():.3g}]. "
                "Divide uint8-range data by 255 or pass uint8 arrays."
            )
        out = X.astype(np.float32, copy=copy)
    return np.ascontiguousarray(out)


def random_affine(x, generator):
    """Random affine distortions of an image batch (Koch et al., 2015, sec. 4.2).

    Each of rotation (+-10 degrees), shear (+-0.3), scale (0.8-1.2) and
    translation (+-10% of the size) is applied with probability 1/2, drawn
    from ``generator`` (a torch.Generator) so that fits stay reproducible.

    Parameters
    ----------
    x : torch.Tensor of shape (N, C, H, W)
    generator : torch.Generator or None
    """
    from .._optional import import_torch

    torch = import_torch("Image augmentation")
    n = x.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=generator)  # noqa: E731
    on = lambda: (torch.rand(n, generator=generator) < 0.5).float()  # noqa: E731
    theta = torch.deg2rad(u(-10.0, 10.0)) * on()
    shear = u(-0.3, 0.3) * on()
    scale_on = on()
    sx = 1 + (u(0.8, 1.2) - 1) * scale_on
    sy = 1 + (u(0.8, 1.2) - 1) * scale_on
    t_on = on()
    tx, ty = u(-0.2, 0.2) * t_on, u(-0.2, 0.2) * t_on
    cos, sin = torch.cos(theta), torch.sin(theta)
    A = torch.stack(
        [
            torch.stack([sx * cos, -sy * sin + shear, tx], 1),
            torch.stack([sx * sin, sy * cos, ty], 1),
        ],
        1,
    ).to(x.device, x.dtype)
    grid = torch.nn.functional.affine_grid(A, x.shape, align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
