import pytest
import torch

from contracts.errors import ConfigurationError
from lightning_modules.dropout import ByteMaskDropout


def test_drops_the_share_p_and_keeps_the_expected_value():
    torch.manual_seed(0)
    dropout = ByteMaskDropout(0.25)
    out = dropout(torch.ones(1000, 300))
    dropped = (out == 0).float().mean().item()
    assert dropped == pytest.approx(0.25, abs=0.003)  # 300,000 draws: sd 0.0008
    assert torch.equal(out.unique(), torch.tensor([0.0, 4 / 3]))
    assert out.mean().item() == pytest.approx(1.0, abs=0.004)


def test_p_is_rounded_to_a_multiple_of_1_256_and_the_scale_follows_it():
    torch.manual_seed(0)
    out = ByteMaskDropout(0.1)(torch.ones(2000, 500))
    assert (out == 0).float().mean().item() == pytest.approx(26 / 256, abs=0.002)
    assert out.max().item() == pytest.approx(256 / 230)


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(64, 33, requires_grad=True)  # 2,112 elements: not a multiple of 8 bytes
    out = ByteMaskDropout(0.5)(x)
    out.sum().backward()
    kept = out.detach() != 0
    assert torch.equal(x.grad, kept.float() * 2.0)
    assert torch.allclose(out.detach()[kept], 2 * x.detach()[kept])


def test_the_same_seed_draws_the_same_mask():
    x = torch.randn(7, 11)
    torch.manual_seed(3)
    first = ByteMaskDropout(0.25)(x)
    torch.manual_seed(3)
    assert torch.equal(ByteMaskDropout(0.25)(x), first)


def test_identity_in_eval_mode_and_at_p_0():
    x = torch.randn(5, 4)
    assert torch.equal(ByteMaskDropout(0.25).eval()(x), x)
    assert torch.equal(ByteMaskDropout(0.0)(x), x)


def test_p_outside_0_1_is_refused_naming_the_option():
    with pytest.raises(ConfigurationError, match="dropout"):
        ByteMaskDropout(1.0)
