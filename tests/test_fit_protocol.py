"""One shape for every classic learner (issue 12): each fit goes through a
SolverResult and BaseMahalanobis._store_result, so every learner has
components_, n_iter_, loss_ and converged_, prints progress as
``[ClassName] iter k  loss ...`` and warns with the one ConvergenceWarning.

LMNN / LMNNClassifier are covered in tests/test_lmnn.py.
"""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skmetric import (
    ITML, LFDA, MCML, MLKR, MMC, NCA, RCA, SDML, Covariance, ITMLPairs, MMCPairs, SDMLPairs,
)
from skmetric._solver import SolverResult
from skmetric.constraints import pairs_from_indices, sample_pairs
from skmetric.covariance import fit_covariance
from skmetric.lfda import fit_lfda
from skmetric.rca import fit_rca


def _labelled():
    rng = np.random.RandomState(0)
    centers = rng.normal(scale=3.0, size=(3, 4))
    X = np.vstack([c + rng.normal(size=(20, 4)) for c in centers])
    return X, np.repeat(np.arange(3), 20)


def _pairs():
    X, y = _labelled()
    idx, lab = sample_pairs(y, 30, random_state=0)
    return pairs_from_indices(X, idx), lab


_ITML_REASON = r"max_iter=1 passes reached with a dual change of [0-9.e+-]+ >= tol=0"
_MMC_REASON = r"max_iter=1 reached with a relative duality gap of [0-9.e+-]+ > tol=0"
_SDML_REASON = r"max_iter=1 steps reached with an optimality residual of [0-9.e+-]+ > tol=0"
# name: (class, data, why a 1-iteration fit stops, as a regular expression)
ITERATIVE = {
    "NCA": (NCA, _labelled, r"max_iter=1 iterations reached"),
    "MCML": (MCML, _labelled, r"max_iter=1 steps reached"),
    "ITML": (ITML, _labelled, _ITML_REASON),
    "ITMLPairs": (ITMLPairs, _pairs, _ITML_REASON),
    "MMC": (MMC, _labelled, _MMC_REASON),
    "MMCPairs": (MMCPairs, _pairs, _MMC_REASON),
    "SDML": (SDML, _labelled, _SDML_REASON),
    "SDMLPairs": (SDMLPairs, _pairs, _SDML_REASON),
    "MLKR": (MLKR, _labelled, r"max_iter=1 iterations reached"),
}


def _make(name, **params):
    cls, data, _ = ITERATIVE[name]
    if "random_state" in cls().get_params():
        params["random_state"] = 0
    return cls(**params), data()


@pytest.mark.parametrize("name", ITERATIVE)
def test_convergence_warning_message(name):
    est, data = _make(name, max_iter=1, tol=0)
    reason = ITERATIVE[name][2]
    loss = r"\(final loss [0-9.e+-]+\)"
    match = rf"^{name} did not converge: {reason} {loss}; increase max_iter or tol\.$"
    with pytest.warns(ConvergenceWarning, match=match):
        est.fit(*data)
    assert est.n_iter_ == 1 and est.converged_ is False and np.isfinite(est.loss_)


@pytest.mark.parametrize("name", ITERATIVE)
def test_verbose_prints_iterations_in_one_voice(name, capsys):
    est, data = _make(name, max_iter=3, tol=0, verbose=1)
    with pytest.warns(ConvergenceWarning):
        est.fit(*data)
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith(f"[{name}] ") for line in lines)
    iters = [line for line in lines if line.startswith(f"[{name}] iter")]
    assert iters and all(" loss " in line for line in iters)
    assert lines[-1].startswith(f"[{name}] done: 3 iterations, loss ")


@pytest.mark.parametrize("name", ITERATIVE)
def test_silent_by_default_and_fitted_attributes(name, capsys):
    est, data = _make(name, max_iter=3, tol=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(*data)
    assert capsys.readouterr().out == ""
    assert est.components_.ndim == 2 and est.n_iter_ == 3
    assert isinstance(est.loss_, float) and est.converged_ is False
    assert not hasattr(est, "objective_")


@pytest.mark.parametrize(
    "est", [RCA(random_state=0), LFDA(), Covariance()], ids=["RCA", "LFDA", "Covariance"]
)
def test_closed_form_learners_store_a_result(est, recwarn):
    X, y = _labelled()
    est.fit(X, y)
    assert est.n_iter_ == 0 and est.converged_ is True
    assert not [w for w in recwarn if issubclass(w.category, ConvergenceWarning)]
    if isinstance(est, LFDA):
        # minus LFDA's maximised trace ratio, the sum of the kept eigenvalues
        assert est.loss_ == pytest.approx(-est.eigenvalues_.sum())
    else:
        assert np.isnan(est.loss_)  # nothing is optimised


def test_closed_form_solvers_return_solver_results():
    X, y = _labelled()
    for res, est in [
        (fit_rca(X, y, 4, 1e-3), RCA().fit_chunklets(X, y)),
        (fit_lfda(X, y, 4), LFDA().fit(X, y)),
        (fit_covariance(X), Covariance().fit(X)),
    ]:
        assert isinstance(res, SolverResult) and (res.n_iter, res.converged) == (0, True)
        np.testing.assert_array_equal(res.components, est.components_)
    assert fit_rca(X, y, 4, 1e-3).info["n_chunks"] == 3
    np.testing.assert_allclose(res.metric, np.linalg.inv(np.cov(X, rowvar=False)))
