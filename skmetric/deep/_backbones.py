"""Classification backbones: build, load weights, read a layer, preprocess.

The one home for turning ``(backbone, weights, layer)`` into a frozen feature
network and for the image preprocessing that goes with its weights. torch and
torchvision are imported inside the functions, so importing this module is
cheap.

* ``backbone``: a torchvision classification model name
  (``torchvision.models.get_model``), or a user ``torch.nn.Module``.
* ``weights``: None (random initialisation), a torchvision weights name for
  that model ("DEFAULT", "IMAGENET1K_V1", or "ResNet18_Weights.IMAGENET1K_V1"),
  a weights enum member, or the path of a local file holding a state_dict.
  Torchvision weights are read from the torch hub cache
  (``<torch.hub.get_dir()>/checkpoints/<file name of weights.url>``) and only
  downloaded when missing; without network that fails within seconds.
* ``layer``: None reads the pooled penultimate layer of a torchvision model
  (its final Linear classifier is replaced by Identity) and the output of a
  user module; a node name (see ``torchvision.models.feature_extraction.
  get_graph_node_names``) reads that node, pooled to a vector.
"""

import copy
import enum
import importlib
import os
from dataclasses import dataclass

from .._download import check_reachable, download_timeout
from .._optional import import_torch, import_torchvision

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Preprocessing",
    "build_network",
    "resolve_weights",
    "preprocessing_for",
    "preprocess",
    "pool_features",
    "trainable_blocks",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's ImageNet classification preset: resize the shorter side, crop.
DEFAULT_RESIZE, DEFAULT_CROP = 256, 224
_WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


def _purpose():
    return "skmetric's CNN backbones"


@dataclass(frozen=True)
class Preprocessing:
    """How a batch in [0, 1] becomes network input.

    Attributes
    ----------
    size : (height, width) or None
        Resize exactly to this size (when ``resize`` is None).
    resize : int or None
        Resize the shorter side to this length, then centre-crop ``crop``.
    crop : (height, width) or None
    mean, std : tuple of 3 floats or None
        Per-channel normalisation; None leaves values in [0, 1].
    interpolation : {'bilinear', 'bicubic'}
    """

    size: tuple = None
    resize: int = None
    crop: tuple = None
    mean: tuple = None
    std: tuple = None
    interpolation: str = "bilinear"


# ---------------------------------------------------------------- weights


def _is_weights_file(weights):
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (
        os.path.exists(weights)
        or os.sep in weights
        or "/" in weights
        or weights.lower().endswith(_WEIGHT_FILE_SUFFIXES)
    )


def resolve_weights(backbone, weights):
    """Classify ``weights``: ('none', None), ('file', path) or ('torchvision', enum).

    Raises
    ------
    ValueError
        A missing file, an unknown weights name, or a weights name given with
        a user module.
    """
    if weights is None:
        return "none", None
    if _is_weights_file(weights):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ValueError(f"Weights file not found: {path!r}.")
        return "file", path
    tv = import_torchvision(_purpose())
    if isinstance(weights, enum.Enum):
        return "torchvision", weights
    if not isinstance(weights, str):
        raise ValueError(
            "weights must be None, a torchvision weights name, or a path to a "
            f"state_dict file; got {type(weights).__name__}."
        )
    if not isinstance(backbone, str):
        raise ValueError(
            f"weights={weights!r} names torchvision weights, which needs a torchvision "
            "backbone name; for your own module pass a state_dict file path, or load "
            "the weights into the module and use weights=None."
        )
    if "." in weights:  # "ResNet18_Weights.IMAGENET1K_V1"
        try:
            return "torchvision", tv.models.get_weight(weights)
        except (ValueError, KeyError, AttributeError) as exc:
            raise ValueError(f"Unknown torchvision weights {weights!r}.") from exc
    enum_cls = _weights_enum(backbone)
    try:
        return "torchvision", enum_cls[weights]
    except KeyError:
        names = ["DEFAULT", *enum_cls.__members__]
        raise ValueError(
            f"Unknown weights {weights!r} for {backbone!r}; choose from {names}, "
            "None, or a path to a state_dict file."
        ) from None


def _weights_enum(backbone):
    tv = import_torchvision(_purpose())
    try:
        return tv.models.get_model_weights(backbone)
    except (ValueError, KeyError) as exc:
        raise ValueError(_unknown_backbone(backbone)) from exc


def _unknown_backbone(name):
    tv = import_torchvision(_purpose())
    names = tv.models.list_models(module=tv.models)
    return (
        f"Unknown torchvision classification backbone {name!r}; choose from "
        f"{', '.join(names[:12])}, ... ({len(names)} models), or pass a torch.nn.Module."
    )


def cached_weights_path(weights):
    """Where the torch hub cache keeps the file of a torchvision weights enum."""
    torch = import_torch(_purpose())
    filename = os.path.basename(weights.url.split("?")[0])
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def ensure_weights_available(weights, timeout=3.0):
    """Return quickly when the weights can be loaded: cached, or the host answers.

    Raises
    ------
    ConnectionError
        Not cached and the download host is unreachable; the message says
        where to put the file, or how to pass a local file instead.
    """
    path = cached_weights_path(weights)
    if os.path.isfile(path):
        return path
    hint = (
        f"Download {weights.url} on a machine with network access and copy it to "
        f"{path} (the torch hub cache; set TORCH_HOME to move it), or pass "
        "weights='/path/to/state_dict.pth' (a file saved with "
        "torch.save(model.state_dict(), path)), or weights=None."
    )
    check_reachable(weights.url, f"the pretrained weights {weights!r}", hint, timeout=timeout)
    return path


def _read_state_dict(path):
    torch = import_torch(_purpose())
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, full pickled models
        raise ValueError(
            f"Could not read a state_dict from {path!r} ({exc}). Save one with "
            "torch.save(model.state_dict(), path)."
        ) from exc
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path!r} does not hold a state_dict (got {type(state).__name__}).")
    # Checkpoints saved from nn.DataParallel prefix every key with 'module.'.
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


# ---------------------------------------------------------------- modules


def _last_linear(model):
    torch = import_torch(_purpose())
    found = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            found = name
    return found


def _set_submodule(model, dotted, new):
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _fit_head_to(model, state):
    """Resize the final Linear to the state's shape (a head for other classes)."""
    torch = import_torch(_purpose())
    head = _last_linear(model)
    if head is None or f"{head}.weight" not in state:
        return
    w = state[f"{head}.weight"]
    current = model.get_submodule(head)
    if tuple(current.weight.shape) != tuple(w.shape):
        bias = f"{head}.bias" in state
        _set_submodule(model, head, torch.nn.Linear(w.shape[1], w.shape[0], bias=bias))


def load_state(model, state, source):
    """Load a state_dict, with a ValueError that names missing/unexpected keys."""
    _fit_head_to(model, state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"The weights in {source} do not fit this backbone: {exc}") from exc


def _architecture(backbone, kind, weights):
    tv = import_torchvision(_purpose())
    if not isinstance(backbone, str):
        return copy.deepcopy(backbone)  # never modify the user's module
    if backbone not in tv.models.list_models(module=tv.models):
        raise ValueError(_unknown_backbone(backbone))
    if kind == "torchvision":
        ensure_weights_available(weights)
        with download_timeout():
            return tv.models.get_model(backbone, weights=weights)
    return tv.models.get_model(backbone, weights=None)


def build_network(backbone, weights=None, layer=None, state=None):
    """A frozen feature network in eval mode.

    Parameters
    ----------
    backbone : str or torch.nn.Module
    weights : None, str, PathLike or torchvision weights enum
        See the module docstring.
    layer : str or None
        None: the pooled penultimate layer of a torchvision model (its final
        Linear becomes Identity) or the output of a user module. A node name
        returns that node (a dict ``{layer: tensor}``, see :func:`pool_features`).
    state : dict or None
        A state_dict of the built network (from an earlier call) to load
        instead of ``weights``; used to restore a pickled estimator.

    Returns
    -------
    network : torch.nn.Module
    """
    torch = import_torch(_purpose())
    tv = import_torchvision(_purpose())
    kind, resolved = resolve_weights(backbone, None if state is not None else weights)
    model = _architecture(backbone, kind, resolved)
    if kind == "file":
        load_state(model, _read_state_dict(resolved), repr(resolved))
    if state is not None:
        _fit_head_to(model, state)
    if layer is None:
        if isinstance(backbone, str):
            head = _last_linear(model)
            if head is None:
                raise ValueError(
                    f"{backbone!r} has no final Linear classifier to remove; pass layer="
                    "a node name (torchvision.models.feature_extraction.get_graph_node_names)."
                )
            _set_submodule(model, head, torch.nn.Identity())
    else:
        fx = importlib.import_module("torchvision.models.feature_extraction")
        model.eval()
        nodes = fx.get_graph_node_names(model)[1]
        # A module name ('layer3') stands for its last node, as in torchvision.
        if layer not in nodes and not any(n.startswith(layer + ".") for n in nodes):
            raise ValueError(
                f"Unknown layer {layer!r}; choose a node name such as {nodes[-6:]} "
                "(all names: torchvision.models.feature_extraction.get_graph_node_names)."
            )
        model = fx.create_feature_extractor(model, return_nodes=[layer])
    if state is not None:
        load_state(model, state, "the pickled estimator")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def trainable_blocks(network):
    """The network's blocks in forward order, for partial fine-tuning.

    A block is a top-level child that holds parameters; a top-level
    ``nn.Sequential`` (a ResNet stage, VGG's feature stack) is split into its
    children, so ResNet-18's last block is ``layer4[1]``.
    """
    torch = import_torch(_purpose())
    blocks = []
    for child in network.children():
        parts = list(child.children()) if isinstance(child, torch.nn.Sequential) else [child]
        blocks.extend(p for p in parts if any(True for _ in p.parameters()))
    return blocks


# ---------------------------------------------------------------- preprocessing


def _pair(size):
    if isinstance(size, (int, float)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def preprocessing_for(backbone, weights, input_size=None, normalize="auto"):
    """The :class:`Preprocessing` that matches a backbone and its weights.

    ``input_size`` (int or (h, w)) resizes exactly to that size. Without it a
    torchvision model follows its weights' transforms (resize the shorter
    side, centre-crop; torchvision's ImageNet preset of 256/224 for
    weights=None or a file) and a user module gets its images unresized.
    ``normalize``: 'auto' (the weights' mean/std, ImageNet's otherwise),
    None (keep [0, 1]) or a (mean, std) pair.
    """
    kind, resolved = resolve_weights(backbone, weights)
    preset = resolved.transforms() if kind == "torchvision" else None
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    interpolation = "bilinear"
    if preset is not None:
        mean = tuple(getattr(preset, "mean", mean))
        std = tuple(getattr(preset, "std", std))
        mode = getattr(preset, "interpolation", None)
        interpolation = "bicubic" if "bicubic" in str(mode).lower() else "bilinear"
    if normalize is None:
        mean = std = None
    elif not (isinstance(normalize, str) and normalize == "auto"):
        try:
            mean, std = (tuple(float(v) for v in part) for part in normalize)
        except (TypeError, ValueError):
            raise ValueError(
                f"normalize must be 'auto', None or (mean, std) with 3 values each; got {normalize!r}."
            ) from None
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"normalize needs 3 means and 3 positive stds; got {normalize!r}.")
    common = dict(mean=mean, std=std, interpolation=interpolation)
    if input_size is not None:
        return Preprocessing(size=_pair(input_size), **common)
    if preset is not None:
        return Preprocessing(
            resize=int(preset.resize_size[0]), crop=_pair(preset.crop_size[0]), **common
        )
    if isinstance(backbone, str):
        return Preprocessing(resize=DEFAULT_RESIZE, crop=_pair(DEFAULT_CROP), **common)
    return Preprocessing(**common)


def preprocess(x, spec):
    """Apply :class:`Preprocessing` to a float tensor (N, C, H, W) in [0, 1].

    Grayscale becomes 3 channels; resizing is antialiased, as torchvision's
    presets are.
    """
    torch = import_torch(_purpose())
    F = torch.nn.functional
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != 3:
        raise ValueError(f"Images must have 1 or 3 channels; got {x.shape[1]}.")
    h, w = x.shape[-2:]
    target = spec.size
    if spec.resize is not None:
        short, long_ = (h, w) if h <= w else (w, h)
        new_long = int(spec.resize * long_ / short)
        target = (spec.resize, new_long) if h <= w else (new_long, spec.resize)
    if target is not None and tuple(target) != (h, w):
        x = F.interpolate(
            x, size=tuple(target), mode=spec.interpolation, align_corners=False, antialias=True
        )
        if spec.interpolation == "bicubic":
            x = x.clamp(0.0, 1.0)
    if spec.crop is not None:
        ch, cw = spec.crop
        h, w = x.shape[-2:]
        if ch > h or cw > w:
            raise ValueError(f"Crop size {spec.crop} is larger than the resized image {(h, w)}.")
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        x = x[..., top : top + ch, left : left + cw]
    if spec.mean is not None:
        mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x.contiguous()


def pool_features(out, layer=None, pooling="avg"):
    """Network output -> (N, D): pick the layer, pool feature maps or tokens."""
    if isinstance(out, dict):
        out = out[layer]
    if isinstance(out, (tuple, list)):  # e.g. a model returning (logits, aux)
        out = out[0]
    if out.ndim == 2:
        return out
    if pooling == "flatten":
        return out.flatten(1)
    dims = tuple(range(2, out.ndim)) if out.ndim == 4 else (1,)  # (N,C,H,W) or tokens (N,T,D)
    return out.mean(dim=dims) if pooling == "avg" else out.amax(dim=dims)
