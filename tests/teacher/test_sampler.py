"""Rectified-flow loss and Euler sampler, against hand-built velocity fields."""

import pytest
import torch
from torch import nn

from lyra.errors import ConfigError
from lyra.teacher.conditioning import Conditions
from lyra.teacher.denoiser import TeacherDenoiser, preset_config
from lyra.teacher.sampler import flow_matching_loss, interpolate, sample, sample_times, time_grid

SHAPE = (3, 16, 2, 4, 6)


def conds(seed: int = 0, shape=SHAPE) -> Conditions:
    g = torch.Generator().manual_seed(seed)
    V, _, t, h, w = shape
    return Conditions(torch.randn(shape, generator=g), torch.rand(V, 1, t, h, w, generator=g))


class Linear(nn.Module):
    """A hand-built stand-in: ``v = a·x_t + b·t + c·warp_latents``."""

    def __init__(self, a=2.0, b=-0.5, c=0.25):
        super().__init__()
        self.a, self.b, self.c = a, b, c

    def forward(self, x, t, cond):
        return self.a * x + self.b * t.reshape(-1, 1, 1, 1, 1) + self.c * cond.latents


class Oracle(nn.Module):
    """The exact velocity of the straight path through ``x_t`` towards ``target`` at ``t = 0``."""

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.calls = 0

    def forward(self, x, t, cond):
        self.calls += 1
        return (x - self.target) / t.reshape(-1, 1, 1, 1, 1)


def test_loss_is_the_velocity_mse():
    c = conds(1)
    clean = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2)) * 0.5
    model = Linear()
    loss = flow_matching_loss(model, clean, c, torch.Generator().manual_seed(7))
    # redraw what the loss drew, in the same order: noise, then logit-normal times
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(SHAPE, generator=g)
    t = torch.sigmoid(torch.randn(SHAPE[0], generator=g))
    x_t = (1 - t.view(-1, 1, 1, 1, 1)) * clean + t.view(-1, 1, 1, 1, 1) * noise
    expected = ((2.0 * x_t - 0.5 * t.view(-1, 1, 1, 1, 1) + 0.25 * c.latents - (noise - clean)) ** 2).mean()
    assert torch.allclose(loss, expected, rtol=1e-6, atol=1e-7)
    # same seed, same loss; another seed, another loss
    assert loss == flow_matching_loss(model, clean, c, torch.Generator().manual_seed(7))
    assert loss != flow_matching_loss(model, clean, c, torch.Generator().manual_seed(8))


def test_loss_is_zero_for_the_true_velocity_at_given_times():
    clean = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([0.1, 0.5, 0.9])
    loss = flow_matching_loss(Oracle(clean), clean, conds(), torch.Generator().manual_seed(0), t=t)
    assert loss.item() < 1e-10


def test_interpolate_endpoints_and_times():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    x = interpolate(a, b, torch.tensor([0.0, 0.25]))
    assert torch.equal(x, torch.tensor([[0.0] * 3, [0.25] * 3]))
    t = sample_times(10000, torch.Generator().manual_seed(0))
    assert 0 < t.min() and t.max() < 1 and abs(t.mean().item() - 0.5) < 0.01
    assert torch.equal(time_grid(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    with pytest.raises(ConfigError):
        time_grid(0)


@pytest.mark.parametrize("steps", [1, 4, 35])
def test_euler_with_an_oracle_recovers_the_target(steps):
    target = torch.randn(SHAPE, generator=torch.Generator().manual_seed(4)) * 0.5
    oracle = Oracle(target)
    out = sample(oracle, conds(), steps=steps, generator=torch.Generator().manual_seed(5), progress=False)
    assert oracle.calls == steps
    assert torch.allclose(out, target, atol=1e-5)


def test_guidance_combines_conditional_and_blank_velocities():
    class ConstantVelocity(nn.Module):
        def forward(self, x, t, cond):
            return cond.latents  # zero for the blanked conditions

    c = conds(6)
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(9))
    for w in (1.0, 3.0):
        out = sample(ConstantVelocity(), c, steps=2, guidance=w, noise=noise, progress=False)
        assert torch.allclose(out, noise - w * c.latents, atol=1e-6)  # ∫ from t=1 to 0 of w·L dt


def test_sampling_is_deterministic_per_seed_with_the_tiny_denoiser():
    cfg = preset_config("tiny")
    cfg["transformer"].update(num_layers=1, max_size=(4, 8, 8))
    model = TeacherDenoiser.from_config(cfg, seed=0).eval()
    c = conds(0, (2, 16, 2, 4, 6))

    def run(seed):
        return sample(model, c, steps=2, generator=torch.Generator().manual_seed(seed), progress=False)

    a, b, other = run(11), run(11), run(12)
    assert a.shape == (2, 16, 2, 4, 6) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.allclose(a, other)


def test_sampler_rejects_mismatched_noise():
    with pytest.raises(ValueError):
        sample(Linear(), conds(), steps=1, noise=torch.zeros(1, 16, 2, 4, 6), progress=False)


# --------------------------------------------------------------------------- few-step distillation
def _tiny_teacher(seed: int = 1) -> tuple[TeacherDenoiser, Conditions, torch.Tensor]:
    cfg = preset_config("tiny")
    cfg["transformer"].update(num_layers=1, max_size=(4, 16, 16))
    model = TeacherDenoiser.from_config(cfg, seed=seed).eval()
    g = torch.Generator().manual_seed(seed)
    cond = Conditions(torch.randn(2, 16, 2, 4, 6, generator=g), torch.rand(2, 1, 2, 4, 6, generator=g))
    return model, cond, torch.randn(2, 16, 2, 4, 6, generator=g)


def test_euler_path_holds_the_states_of_sample():
    from lyra.teacher.sampler import euler_path

    model, cond, noise = _tiny_teacher()
    path = euler_path(model, cond, 8, noise, every=2)
    assert len(path) == 5 and torch.equal(path[0], noise)
    torch.testing.assert_close(path[-1], sample(model, cond, steps=8, noise=noise, progress=False))
    torch.testing.assert_close(path[2], euler_path(model, cond, 8, noise, every=4)[1])  # t = 0.5 either way
    with pytest.raises(ConfigError, match="cannot be cut"):
        euler_path(model, cond, 8, noise, every=3)


def test_secant_distillation_targets_land_the_few_steps_on_the_teacher_path():
    from lyra.teacher.sampler import euler_path, secant_distillation_loss

    teacher, cond, noise = _tiny_teacher()
    path = euler_path(teacher, cond, 12, noise, every=3)  # coarse states at t = 1, 0.75, 0.5, 0.25, 0
    coarse = time_grid(4)

    class SecantOracle(nn.Module):
        """A student whose velocity at each coarse state is the secant to the next: what the loss asks for."""

        def forward(self, x, t, c):
            k = int(torch.argmin((coarse - t[0]).abs()))
            return (path[k + 1] - path[k]) / (coarse[k + 1] - coarse[k])

    oracle = SecantOracle()
    assert float(secant_distillation_loss(oracle, teacher, cond, noise, steps=4, teacher_steps=12)) < 1e-10
    # four Euler steps of that student end where twelve of the teacher end
    torch.testing.assert_close(sample(oracle, cond, steps=4, noise=noise, progress=False),
                               sample(teacher, cond, steps=12, noise=noise, progress=False), atol=1e-5, rtol=1e-5)
    # the teacher itself, taking 4 steps, is not the 12-step result: the loss says so
    with torch.no_grad():
        assert float(secant_distillation_loss(teacher, teacher, cond, noise, steps=4, teacher_steps=12)) > 1e-6
    with pytest.raises(ConfigError, match="multiple"):
        secant_distillation_loss(oracle, teacher, cond, noise, steps=4, teacher_steps=10)
