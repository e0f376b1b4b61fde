"""Siamese pair losses: values against direct computations, gradients, registry."""

import numpy as np
import pytest

from skmetric.deep.losses import (
    LOSSES,
    BinomialDevianceLoss,
    ContrastiveLoss,
    KochLoss,
    PairLoss,
    get_loss,
)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.deep


def _batch(n=6, d=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=dtype)
    b = torch.randn(n, d, generator=g, dtype=dtype)
    t = torch.tensor([1.0, 0.0] * (n // 2), dtype=dtype)
    return a, b, t


def test_contrastive_value_matches_formula():
    a, b, t = _batch()
    loss = ContrastiveLoss(margin=2.0)
    A, B, T = a.numpy(), b.numpy(), t.numpy()
    d = np.linalg.norm(A - B, axis=1)
    expected = np.mean(0.5 * (T * d**2 + (1 - T) * np.maximum(0, 2.0 - d) ** 2))
    assert float(loss(a, b, t)) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(loss.pair_score(a, b).numpy(), -d, rtol=1e-9)


def test_binomial_deviance_value_matches_formula():
    a, b, t = _batch(n=8)
    t[0] = 0.0  # unbalanced batch: 3 positives, 5 negatives
    loss = BinomialDevianceLoss(alpha=2.0, beta=0.5, cost=3.0)
    A, B, T = a.numpy(), b.numpy(), t.numpy()
    s = np.sum(A * B, 1) / (np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1))
    m = np.where(T > 0, 1.0, -3.0)
    dev = np.log1p(np.exp(-2.0 * (s - 0.5) * m))
    expected = dev[T > 0].mean() + dev[T == 0].mean()
    assert float(loss(a, b, t)) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(loss.pair_score(a, b).numpy(), s, rtol=1e-9)


def test_koch_value_matches_formula():
    a, b, t = _batch()
    loss = KochLoss()
    head = loss.make_head(4).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[-1.0, 0.5, -2.0, 0.0]], dtype=torch.float64))
        head.bias.fill_(0.3)
    A, B, T = a.numpy(), b.numpy(), t.numpy()
    logit = np.abs(A - B) @ np.array([-1.0, 0.5, -2.0, 0.0]) + 0.3
    p = 1 / (1 + np.exp(-logit))
    expected = -np.mean(T * np.log(p) + (1 - T) * np.log(1 - p))
    assert float(loss(a, b, t, head).detach()) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(loss.pair_logit(a, b, head).detach().numpy(), logit, rtol=1e-9)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_match_finite_differences(name):
    loss = get_loss(name)
    a, b, t = _batch(n=4, d=3, seed=1)
    a.requires_grad_(True)
    b.requires_grad_(True)
    head = loss.make_head(3)
    head = head.double() if head is not None else None
    assert torch.autograd.gradcheck(lambda x, z: loss(x, z, t, head), (a, b), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ["contrastive", "binomial_deviance"])
def test_score_rule_higher_is_more_similar(name):
    loss = get_loss(name)
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.9, 0.1], [-1.0, 0.2]])  # close pair first, far pair second
    s = loss.pair_score(a, b)
    assert s[0] > s[1]
    # Training lowers the loss of a same-class pair when it moves closer.
    t = torch.ones(1)
    assert float(loss(a[:1], b[:1], t)) < float(loss(a[1:], b[1:], t))


def test_registry_and_instances():
    assert set(LOSSES) == {"koch", "contrastive", "binomial_deviance"}
    for name, cls in LOSSES.items():
        assert isinstance(get_loss(name), cls)
        assert issubclass(cls, PairLoss)
    inst = ContrastiveLoss(margin=3.0)
    assert get_loss(inst) is inst
    with pytest.raises(ValueError, match="Unknown loss"):
        get_loss("triplet")
    assert KochLoss().embedding_activation == "sigmoid"
    with pytest.raises(ValueError, match="margin"):
        ContrastiveLoss(margin=-1.0)._validate_params()


def test_binomial_deviance_single_kind_batch():
    # A batch with only positives still gives a finite loss (no empty mean).
    a, b, _ = _batch(n=4)
    value = BinomialDevianceLoss()(a, b, torch.ones(4, dtype=torch.float64))
    assert np.isfinite(float(value))
