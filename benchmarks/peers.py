"""Peers measured beside skmetric: metric-learn 0.7.0 through a small adapter.

metric-learn 0.7.0 passes ``force_all_finite`` to scikit-learn's
``check_array`` / ``check_X_y``; scikit-learn 1.8 removed that keyword in favour
of ``ensure_all_finite``. :func:`metric_learn_module` rebinds those two
functions *inside metric-learn's own modules* to thin wrappers that rename the
keyword, and nothing else. skmetric itself never imports metric-learn; this
adapter lives in the benchmarks only.
"""

import functools
import importlib

_PATCHED = False
# metric-learn modules that imported check_array / check_X_y by name.
_ML_MODULES = ("metric_learn._util", "metric_learn.itml", "metric_learn.scml")


def _rename_force_all_finite(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if "force_all_finite" in kwargs:
            kwargs["ensure_all_finite"] = kwargs.pop("force_all_finite")
        return func(*args, **kwargs)

    wrapper.__skmetric_adapter__ = True
    return wrapper


def metric_learn_module():
    """Import metric_learn with the keyword adapter applied (once).

    Returns
    -------
    module or None
        The ``metric_learn`` module, or None when it is not installed.
    """
    global _PATCHED
    try:
        ml = importlib.import_module("metric_learn")
    except ImportError:
        return None
    if not _PATCHED:
        for name in _ML_MODULES:
            try:
                mod = importlib.import_module(name)
            except ImportError:
                continue
            for fn in ("check_array", "check_X_y"):
                f = getattr(mod, fn, None)
                if f is not None and not getattr(f, "__skmetric_adapter__", False):
                    setattr(mod, fn, _rename_force_all_finite(f))
        _PATCHED = True
    return ml


def metric_learn_estimator(name, **params):
    """A metric-learn estimator by class name (e.g. 'LMNN'), or None if unavailable."""
    ml = metric_learn_module()
    if ml is None:
        return None
    return getattr(ml, name)(**params)
