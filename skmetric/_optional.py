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


def resolve_device(device, param="device"):
    """The torch device for a ``device`` parameter, checked (the one place that does).

    Parameters
    ----------
    device : {'auto', 'cpu', 'cuda', 'cuda:N'} or torch.device
        ``'auto'`` is ``'cuda'`` when a GPU is present, else ``'cpu'``.
    param : str
        The parameter's name, for the error messages.

    Returns
    -------
    torch.device

    Raises
    ------
    ImportError
        torch is not installed (the message names the extra).
    ValueError
        An unknown device string, or a CUDA device on a machine without one
        (or an index past the GPUs present).
    """
    torch = import_torch(f"{param}={device!r}")
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = device if isinstance(device, torch.device) else torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"{param}={device!r} is not a device; expected 'auto', 'cpu', 'cuda' or "
            "'cuda:N' (or a torch.device)."
        )
    if resolved.type == "cuda":
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n_gpus == 0:
            raise ValueError(
                f"{param}={device!r} asks for a GPU, but torch sees no CUDA device "
                "here; use 'cpu', or 'auto' to take a GPU only when there is one."
            )
        if resolved.index is not None and resolved.index >= n_gpus:
            raise ValueError(
                f"{param}={device!r}: there are only {n_gpus} CUDA device(s) "
                f"(cuda:0 to cuda:{n_gpus - 1})."
            )
    return resolved
