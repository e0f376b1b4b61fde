"""Optional dependencies: torch and torchvision are imported only when needed.

``import skmetric`` and every classic learner work without torch; the deep
components call :func:`import_torch` / :func:`import_torchvision` when they
are fitted or built.
"""

import importlib

__all__ = ["import_optional", "import_torch", "import_torchvision", "resolve_device"]

_HINT = 'Install the deep extra: pip install "skmetric[deep]"'


def _import(name, purpose):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs {name}, which is not installed. {_HINT}") from exc


def import_optional(name, purpose="This skmetric component"):
    """Import and return module ``name`` of the 'deep' extra (Pillow, matplotlib, ...)."""
    return _import(name, purpose)


def import_torch(purpose="This skmetric component"):
    """Import and return ``torch``, or raise an ImportError naming the extra."""
    return _import("torch", purpose)


def import_torchvision(purpose="This skmetric component"):
    """Import and return ``torchvision``, or raise an ImportError naming the extra."""
    return _import("torchvision", purpose)


def resolve_device(device):
    """Turn ``"auto"`` into ``"cuda"`` when a GPU is present, else ``"cpu"``."""
    torch = import_torch()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
