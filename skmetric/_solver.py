"""What every solver returns, how it reports progress, and the one convergence warning.

The layers of a fit (see ARCHITECTURE.md)::

    validation (_validation) -> init (_init) -> solver (_<name>_solver) -> SolverResult
        -> BaseMahalanobis._store_result (components_, n_iter_, loss_, converged_, warning)

* :class:`SolverResult` is the one frozen result type of every solver: the
  learned map ``components`` (``L``, with ``L.T @ L = M``), the final
  ``loss`` (the value the solver minimised), ``n_iter``, ``converged`` and a
  ``message`` saying why it stopped. Solver-specific by-products (LMNN's
  target neighbours, MMC's duality gap) go in ``info``.
* :class:`Progress` is the one progress voice: ``[ClassName] iter k  loss ...``.
  Solvers receive it (or ``None``) and call it; they never print.
* :func:`warn_not_converged` is the one ConvergenceWarning.
"""

import sys
import time
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["SolverResult", "Progress", "warn_not_converged", "NO_PROGRESS"]


@dataclass(frozen=True)
class SolverResult:
    """The result of one solver run.

    Attributes
    ----------
    components : ndarray of shape (n_components, n_features)
        The learned linear map ``L``; the Mahalanobis matrix is ``L.T @ L``.
    loss : float
        Final value of the objective the solver minimised (a maximised
        objective is reported negated, so lower is always better).
    n_iter : int
        Iterations run (all passes / restarts together).
    converged : bool
        Whether the solver's stopping rule was met (not the iteration limit).
    message : str
        Why the solver stopped, in words (used by the convergence warning).
    metric : ndarray of shape (n_features, n_features) or None
        The Mahalanobis matrix ``M`` when the solver works on ``M`` (then
        ``components`` is its factor).
    info : mapping
        Solver-specific by-products (read-only).
    """

    components: np.ndarray
    loss: float
    n_iter: int
    converged: bool
    message: str = ""
    metric: Any = None
    info: Mapping = field(default_factory=dict)

    def __post_init__(self):
        components = np.asarray(self.components, dtype=np.float64)
        if components.ndim != 2:
            raise ValueError(
                f"SolverResult.components must be 2-D, got shape {components.shape}."
            )
        object.__setattr__(self, "components", components)
        object.__setattr__(self, "loss", float(self.loss))
        object.__setattr__(self, "n_iter", int(self.n_iter))
        object.__setattr__(self, "converged", bool(self.converged))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))


class Progress:
    """One progress voice for every learner: ``[ClassName] iter k  loss ...``.

    A solver calls ``progress.iter(k, loss, name=value, ...)`` once per
    iteration and ``progress.say(text)`` for other events; both print only
    when ``verbose`` is positive. Solvers never print themselves.

    Parameters
    ----------
    owner : str or object
        The class name (or an estimator, whose class name is used).
    verbose : int
        0 prints nothing; 1 prints every ``every``-th iteration and events;
        2 and more prints every iteration.
    every : int, default=1
        With ``verbose == 1``, print one iteration line in ``every``.
    stream : file, default=sys.stdout
    """

    def __init__(self, owner, verbose=0, every=1, stream=None):
        self.name = owner if isinstance(owner, str) else type(owner).__name__
        self.verbose = int(verbose or 0)
        self.every = max(1, int(every))
        self.stream = stream
        self.t0 = time.perf_counter()

    def __bool__(self):
        return self.verbose > 0

    def _print(self, text):
        print(f"[{self.name}] {text}", file=self.stream or sys.stdout, flush=True)

    def say(self, text):
        """Print one event line (``[ClassName] text``) when verbose."""
        if self.verbose > 0:
            self._print(text)

    def iter(self, k, loss, **fields):
        """Print the iteration line ``[ClassName] iter k  loss L  name value ... elapsed``."""
        if self.verbose <= 0 or (self.verbose == 1 and k % self.every and k != 1):
            return
        parts = [f"iter {int(k):5d}", f"loss {float(loss): .6e}"]
        for key, value in fields.items():
            if isinstance(value, (float, np.floating)):
                parts.append(f"{key} {float(value):.4g}")
            else:
                parts.append(f"{key} {value}")
        parts.append(f"elapsed {time.perf_counter() - self.t0:.2f}s")
        self._print("  ".join(parts))

    def done(self, result):
        """Print the closing line for a :class:`SolverResult`."""
        self.say(
            f"done: {result.n_iter} iterations, loss {result.loss:.6e}, "
            f"converged={result.converged}"
            + (f" ({result.message})" if result.message else "")
            + f", {time.perf_counter() - self.t0:.2f}s"
        )


#: A silent Progress, the default for solvers called directly.
NO_PROGRESS = Progress("solver", 0)


def warn_not_converged(owner, result, hint="increase max_iter or tol", stacklevel=2):
    """The one ConvergenceWarning: ``<Class> did not converge: <message>; <hint>.``

    Does nothing when ``result.converged``. ``stacklevel`` as in
    :func:`warnings.warn`, counted from the caller of this function.
    """
    if result.converged:
        return
    name = owner if isinstance(owner, str) else type(owner).__name__
    reason = result.message or f"stopped after {result.n_iter} iterations"
    warnings.warn(
        f"{name} did not converge: {reason} (final loss {result.loss:.6g}); {hint}.",
        ConvergenceWarning,
        stacklevel=stacklevel + 1,
    )
