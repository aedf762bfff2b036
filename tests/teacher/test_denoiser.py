"""The teacher's denoiser (CosmosTransformer3DModel + GEN3C inputs) and its warp conditions."""

import pytest
import torch

from lyra.errors import ConfigError, OutputPathError, WeightsError
from lyra.geometry.cameras import Cameras
from lyra.teacher.conditioning import Conditions, mask_to_latent_grid, warp_conditions
from lyra.teacher.denoiser import TeacherDenoiser, preset_config


def small_config(layers: int = 2):
    cfg = preset_config("tiny")
    cfg["transformer"].update(num_layers=layers, max_size=(4, 16, 16))
    return cfg


def inputs(seed: int = 0, B: int = 2, shape=(2, 4, 6), seen: bool = False):
    """Latents ``x``, times ``t`` and conditions; ``seen``: the first two latent rows fully seen by the warp (the
    cells the warp anchor covers)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 16, *shape, generator=g)
    c = Conditions(torch.randn(B, 16, *shape, generator=g), torch.rand(B, 1, *shape, generator=g))
    t = torch.rand(B, generator=g)
    if seen:
        c.mask_latents[:, :, :, :2] = 1.0
    return x, t, c


# --------------------------------------------------------------------------- denoiser
def test_tiny_preset_channels_and_output():
    model = TeacherDenoiser.from_config("tiny")
    cfg = model.config
    assert cfg.in_channels == 16 + 16 + 1 + 1 and cfg.out_channels == 16 and not cfg.concat_padding_mask
    assert model.transformer.patch_embed.proj.in_features == 34 * 1 * 2 * 2  # no padding channel
    x, t, c = inputs()
    with torch.no_grad():
        v = model(x, t, c)
    assert v.shape == x.shape and v.dtype == torch.float32 and torch.isfinite(v).all()


def test_initialisation_is_seeded_and_output_depends_on_every_input():
    a, b = TeacherDenoiser.from_config(small_config(), seed=3), TeacherDenoiser.from_config(small_config(), seed=3)
    other = TeacherDenoiser.from_config(small_config(), seed=4)
    sa, sb, so = a.state_dict(), b.state_dict(), other.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], so[k]) for k in sa)
    # diffusers zero-initialises nothing relevant here: each input moves the output
    x, t, c = inputs()
    with torch.no_grad():
        v = a(x, t, c)
        assert not torch.allclose(v, a(x + 0.1, t, c))
        assert not torch.allclose(v, a(x, t * 0.5, c))
        assert not torch.allclose(v, a(x, t, Conditions(c.latents + 0.1, c.mask_latents)))
        assert not torch.allclose(v, a(x, t, Conditions(c.latents, 1.0 - c.mask_latents)))
        # a scalar time is broadcast over the batch
        assert torch.allclose(a(x, torch.tensor(0.3), c), a(x, torch.full((2,), 0.3), c))


def test_batch_items_are_independent():
    model = TeacherDenoiser.from_config(small_config())
    x, t, c = inputs(B=3)
    with torch.no_grad():
        full = model(x, t, c)
        one = model(x[1:2], t[1:2], c[1])
    assert torch.allclose(full[1:2], one, atol=1e-5)


def test_save_and_load_round_trip(tmp_path):
    model = TeacherDenoiser.from_config(small_config(), seed=1)
    model.save_pretrained(tmp_path / "teacher")
    loaded = TeacherDenoiser.from_pretrained(tmp_path / "teacher")
    assert torch.equal(loaded.null_context, model.null_context)
    x, t, c = inputs(5)
    with torch.no_grad():
        assert torch.equal(model(x, t, c), loaded(x, t, c))
    half = TeacherDenoiser.from_pretrained(tmp_path / "teacher", dtype=torch.float16)
    assert half.dtype == torch.float16
    # saving in fp16 leaves the model in fp32 and stores fp16-rounded weights (loaded as fp32)
    model.save_pretrained(tmp_path / "fp16", dtype=torch.float16)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    stored = TeacherDenoiser.from_pretrained(tmp_path / "fp16")
    w, w16 = model.transformer.proj_out.weight, stored.transformer.proj_out.weight
    assert torch.equal(w16, w.half().float()) and not torch.equal(w16, w)
    # an existing, non-empty folder is not overwritten
    with pytest.raises(OutputPathError):
        model.save_pretrained(tmp_path / "teacher")


def test_errors_a_user_can_cause(tmp_path):
    with pytest.raises(WeightsError):
        TeacherDenoiser.from_pretrained(tmp_path / "missing")
    with pytest.raises(ConfigError):
        preset_config("huge")
    cfg = small_config()
    cfg["transformer"]["in_channels"] = 17  # a plain Cosmos Video2World transformer
    with pytest.raises(ConfigError, match="in_channels"):
        TeacherDenoiser.from_config(cfg)
    model = TeacherDenoiser.from_config(small_config())
    x, t, c = inputs(shape=(2, 5, 6))  # odd latent height: not a multiple of the 2 × 2 patch
    with pytest.raises(ConfigError, match="patch"):
        model(x, t, c)


def test_any_latent_channel_count(tmp_path):
    """A denoiser for a tokenizer of C = 8 latent channels (2 layers, 2 heads × 16): in_channels 2C + 2 = 18,
    forward on [B, 8, t, h, w], and a save/load round trip that keeps C and the recorded tokenizer."""
    cfg = preset_config("tiny", latent_channels=8)
    assert (cfg["transformer"]["in_channels"], cfg["transformer"]["out_channels"]) == (18, 8)
    assert preset_config("tiny")["transformer"]["in_channels"] == 34  # the preset itself is untouched
    cfg["transformer"].update(num_layers=2, num_attention_heads=2, attention_head_dim=16, max_size=(4, 16, 16))
    model = TeacherDenoiser.from_config(cfg, seed=2, latent_channels=8)
    assert model.latent_channels == 8 and model.transformer.patch_embed.proj.in_features == 18 * 4
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 2, 4, 6, generator=g)
    c = Conditions(torch.randn(2, 8, 2, 4, 6, generator=g), torch.rand(2, 1, 2, 4, 6, generator=g))
    t = torch.rand(2, generator=g)
    with torch.no_grad():
        v = model(x, t, c)
        assert v.shape == x.shape and torch.isfinite(v).all()
        assert not torch.allclose(v, model(x, t, Conditions(c.latents + 0.1, c.mask_latents)))
    model.save_pretrained(tmp_path / "c8", tokenizer="tiny_c8")
    loaded = TeacherDenoiser.from_pretrained(tmp_path / "c8")
    assert loaded.latent_channels == 8 and loaded.tokenizer_name == "tiny_c8"
    with torch.no_grad():
        assert torch.equal(loaded(x, t, c), model(x, t, c))
    with pytest.raises(ValueError, match=r"\[B, 8, t, h, w\]"):
        model(torch.randn(2, 16, 2, 4, 6), t, c)
    # a teacher saved without a tokenizer records none (the shipped exports)
    TeacherDenoiser.from_config(small_config(1)).save_pretrained(tmp_path / "plain")
    assert TeacherDenoiser.from_pretrained(tmp_path / "plain").tokenizer_name is None


def test_latent_channel_errors():
    with pytest.raises(ConfigError, match="official teacher reads the Cosmos tokenizer's 16 latent channels, not 64"):
        preset_config("official", latent_channels=64)
    assert preset_config("official", latent_channels=16) == preset_config("official")
    with pytest.raises(ConfigError, match="positive integer"):
        preset_config("tiny", latent_channels=0)
    cfg = preset_config("tiny", latent_channels=8)
    with pytest.raises(ConfigError, match="out_channels 8, not latent_channels 16"):
        TeacherDenoiser.from_config(cfg, latent_channels=16)
    cfg["transformer"]["in_channels"] = 12  # fewer latent channels (2) than it would generate (8)
    with pytest.raises(ConfigError, match=r"in_channels K \+ C \+ 2 .* for out_channels K ≤ C .* got in_channels 12"):
        TeacherDenoiser.from_config(cfg)


def test_warp_anchor_is_a_shift_of_the_same_flow(tmp_path):
    anchored = TeacherDenoiser.from_config(small_config(), seed=5).set_anchor("warp")
    plain = TeacherDenoiser.from_config(small_config(), seed=5)
    x, t, c = inputs(seed=2, seen=True)
    a = TeacherDenoiser.warp_anchor(c)
    full = (c.mask_latents >= 1.0).expand_as(a)
    assert torch.equal(a[full], c.latents[full]) and bool((a[~full] == 0).all())
    with torch.no_grad():
        # v_x(x_t) = v_y(x_t − (1 − t)·a) − a: the plain network on the shifted input, minus the anchor
        want = plain(x - (1 - t).view(-1, 1, 1, 1, 1) * a, t, c) - a
        torch.testing.assert_close(anchored(x, t, c), want, atol=1e-5, rtol=1e-5)
    # recorded in teacher.json and read back; the plain default leaves teacher.json as before
    anchored.save_pretrained(tmp_path / "w")
    assert '"anchor": "warp"' in (tmp_path / "w" / "teacher.json").read_text()
    assert TeacherDenoiser.from_pretrained(tmp_path / "w").anchor_mode == "warp"
    plain.save_pretrained(tmp_path / "p")
    assert "anchor" not in (tmp_path / "p" / "teacher.json").read_text()
    assert TeacherDenoiser.from_pretrained(tmp_path / "p").anchor_mode == "none"
    with pytest.raises(ConfigError, match="unknown teacher anchor"):
        plain.set_anchor("pixels")


@pytest.mark.parametrize("steps", [1, 4, 35])
def test_clean_prediction_with_the_anchor_samples_the_warp_from_a_silent_network(tmp_path, steps):
    from lyra.teacher.sampler import sample

    model = TeacherDenoiser.from_config(small_config(), seed=6).set_anchor("warp").set_prediction("clean")
    model.silence_output()  # the network says nothing: x̂_0 = the anchor
    x, t, c = inputs(seed=4, seen=True)
    a = TeacherDenoiser.warp_anchor(c)
    with torch.no_grad():
        v = model(x, t, c)
        torch.testing.assert_close(v, (x - a) / t.view(-1, 1, 1, 1, 1))  # the straight path through x̂_0
        # every Euler step follows that straight line: the sampler lands on the anchor from any noise
        out = sample(model, c, steps=steps, noise=x, progress=False)
    torch.testing.assert_close(out, a, atol=1e-5, rtol=1e-5)
    model.save_pretrained(tmp_path / "w")
    back = TeacherDenoiser.from_pretrained(tmp_path / "w")
    assert (back.prediction, back.anchor_mode) == ("clean", "warp")
    with pytest.raises(ConfigError, match="unknown teacher prediction"):
        back.set_prediction("noise")


@pytest.mark.parametrize("anchored", [False, True])
def test_edm_prediction_returns_the_true_velocity_for_the_ideal_output(tmp_path, anchored):
    """prediction "edm": a transformer that outputs F* = (y_0 − c_skip·y_t)/c_out gets exactly the rectified-flow
    velocity ε − x_0 back, at every t including 0 and 1; F*'s variance is 1 for unit-variance data and noise."""
    model = TeacherDenoiser.from_config(small_config(), seed=7).set_prediction("edm")
    if anchored:
        model.set_anchor("warp")
    x0, _, c = inputs(seed=5, B=5, seen=True)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(9))
    t = torch.tensor([0.0, 0.03, 0.5, 0.9, 1.0])
    tt = t.view(-1, 1, 1, 1, 1)
    a = TeacherDenoiser.warp_anchor(c) if anchored else torch.zeros_like(x0)
    x_t = (1 - tt) * x0 + tt * eps
    y0, y_t = x0 - a, (1 - tt) * (x0 - a) + tt * eps
    d = (1 - tt) ** 2 + tt ** 2
    c_skip, c_out = (1 - tt) / d, tt / d.sqrt()
    ideal = torch.where(tt > 0, (y0 - c_skip * y_t) / c_out.clamp_min(1e-12), -eps)  # t = 0: the limit −ε
    model.transformer.forward = lambda **kw: (ideal.to(kw["hidden_states"].dtype),)
    with torch.no_grad():
        v = model(x_t, t, c)
    torch.testing.assert_close(v, eps - x0, atol=1e-4, rtol=1e-4)
    # the preconditioning's point: F*'s target has unit variance at every t (independent unit-variance y_0, ε)
    for s in (0.05, 0.3, 0.5, 0.8, 1.0):
        dd = (1 - s) ** 2 + s ** 2
        cs, co = (1 - s) / dd, s / dd ** 0.5
        assert abs(((1 - cs * (1 - s)) ** 2 + (cs * s) ** 2) / co ** 2 - 1.0) < 1e-9
    model = TeacherDenoiser.from_config(small_config(), seed=7).set_prediction("edm")
    model.save_pretrained(tmp_path / "w")
    assert TeacherDenoiser.from_pretrained(tmp_path / "w").prediction == "edm"


def test_generated_channels_leave_the_trailing_ones_to_the_anchor(tmp_path):
    """K = 6 of C = 16 channels generated: the transformer's layout, the save/load round trip, the leading channels
    exactly as a C-channel-input network with the same output would give them, the trailing ones on the straight path to
    the anchor (the sampler lands on it), and a loss that only sees the generated channels."""
    from lyra.teacher.sampler import flow_matching_loss, sample

    cfg = preset_config("tiny", generated_channels=6)
    assert (cfg["transformer"]["in_channels"], cfg["transformer"]["out_channels"]) == (6 + 16 + 2, 6)
    cfg["transformer"].update(num_layers=1, max_size=(4, 16, 16))
    model = TeacherDenoiser.from_config(cfg, seed=3).set_anchor("warp").set_prediction("clean")
    assert (model.latent_channels, model.generated_channels) == (16, 6)
    x, t, c = inputs(seed=8, seen=True)
    a = TeacherDenoiser.warp_anchor(c)
    with torch.no_grad():
        v = model(x, t, c)
        assert v.shape == x.shape
        tt = t.view(-1, 1, 1, 1, 1)
        torch.testing.assert_close(v[:, 6:], (x[:, 6:] - a[:, 6:]) / tt)
        # the leading channels: the transformer reads x_t's leading 6 channels beside all 16 warp channels
        out = model.transformer(hidden_states=torch.cat([x[:, :6], c.latents, c.mask_latents], 1),
                                timestep=t * 1000.0, encoder_hidden_states=model.null_context.expand(2, -1, -1),
                                condition_mask=torch.zeros_like(c.mask_latents), return_dict=False)[0]
        torch.testing.assert_close(v[:, :6], (x[:, :6] - (out + a[:, :6])) / tt)
        # changing a trailing channel of x_t changes nothing the transformer sees
        x2 = x.clone()
        x2[:, 6:] += 1.0
        torch.testing.assert_close(model(x2, t, c)[:, :6], v[:, :6])
        landed = sample(model, c, steps=4, noise=x, progress=False)
    torch.testing.assert_close(landed[:, 6:], a[:, 6:], atol=1e-5, rtol=1e-5)
    # the loss is the mean over the generated channels only (the others hold no parameter)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    loss = flow_matching_loss(model, x, c, generator=g1)
    noise = torch.randn(x.shape, generator=g2)
    tl = torch.sigmoid(torch.randn(2, generator=g2))
    xt = (1 - tl.view(-1, 1, 1, 1, 1)) * x + tl.view(-1, 1, 1, 1, 1) * noise
    with torch.no_grad():
        want = torch.mean((model(xt, tl, c)[:, :6] - (noise - x)[:, :6]) ** 2)
    torch.testing.assert_close(loss.detach(), want)
    model.save_pretrained(tmp_path / "k6")
    back = TeacherDenoiser.from_pretrained(tmp_path / "k6")
    assert (back.latent_channels, back.generated_channels, back.prediction) == (16, 6, "clean")
    with pytest.raises(ConfigError, match=r"generated_channels must be an integer in 1\.\.16"):
        preset_config("tiny", generated_channels=17)


def test_official_architecture_on_meta():
    model = TeacherDenoiser.from_config("official", meta=True)
    cfg = model.config
    assert model.device.type == "meta"
    assert (cfg.num_layers, cfg.num_attention_heads, cfg.attention_head_dim) == (28, 32, 128)
    assert cfg.in_channels == 34 and cfg.concat_padding_mask
    # patch embedding: (34 + padding channel) × 1 × 2 × 2 inputs → 4096
    assert tuple(model.transformer.patch_embed.proj.weight.shape) == (4096, 35 * 4)
    n = model.num_parameters()
    assert 7.0e9 < n < 7.5e9, n
    # Cosmos-1.0-7B-Video2World (in 17) + GEN3C channels (17 more) → 17 · 4 · 4096 more patch weights
    plain = sum(p.numel() for p in model.transformer.parameters())
    assert n - plain == 512 * 1024  # the null context


def test_padding_mask_channel_runs_without_torchvision(monkeypatch):
    """``concat_padding_mask`` (on in ``official``): diffusers resizes the mask with torchvision, which lyra does
    not depend on; the nearest resize is supplied through torch instead, and the extra channel is all zeros."""
    import diffusers.models.transformers.transformer_cosmos as tc

    monkeypatch.delattr(tc, "transforms", raising=False)
    cfg = small_config(1)
    cfg["transformer"]["concat_padding_mask"] = True
    model = TeacherDenoiser.from_config(cfg, seed=0).eval()
    x, t, c = inputs(B=1, shape=(2, 4, 6))
    with torch.no_grad():
        v = model(x, t, c)
    assert v.shape == x.shape and torch.isfinite(v).all()
    mask = torch.zeros(1, 1, 6, 8)
    mask[..., :3, :4] = 1
    assert torch.equal(tc.transforms.functional.resize(mask, [3, 4], tc.transforms.InterpolationMode.NEAREST),
                       torch.nn.functional.interpolate(mask, size=[3, 4], mode="nearest"))


def test_official_one_trajectory_activations_on_meta():
    """Paper scale, counted on the meta device with fused attention (what CUDA runs for 128-dim heads): one
    trajectory (16 × 88 × 160 latents, 56,320 tokens) needs ~6 GiB of activations beside 13.5 GiB of bf16
    weights, so the official teacher fits 24 GiB one trajectory at a time — two at once do not."""
    from lyra.lowmem import LiveTensorBytes, fused_attention_on_meta

    model = TeacherDenoiser.from_config("official", meta=True).to(torch.bfloat16).eval()
    weights_gib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
    assert 13.0 < weights_gib < 14.0
    peaks = []
    for B in (1, 2):
        x = torch.empty(B, 16, 16, 88, 160, device="meta")
        c = Conditions(torch.empty_like(x), torch.empty(B, 1, 16, 88, 160, device="meta"))
        t = torch.full((B,), 0.5, device="meta")
        with torch.no_grad(), fused_attention_on_meta(), LiveTensorBytes([*model.parameters(), x, t,
                                                                          c.latents, c.mask_latents]) as live:
            v = model(x, t, c)
        assert v.shape == x.shape
        peaks.append(live.peak / 2**30)
    assert weights_gib + peaks[0] < 21.0 < weights_gib + peaks[1], peaks


# --------------------------------------------------------------------------- conditioning
def test_mask_pooling_is_causal_and_blockwise():
    m = torch.zeros(1, 17, 12, 16, dtype=torch.bool)
    m[:, 0] = True  # frame 0 only → latent frame 0
    m[:, 9:13, :8, :8] = True  # 4 of the frames 9..16 in block (0, 0) → latent frame 2, half
    m[:, 9:17, 8:12, 8:16] = True  # the partial bottom block: 4 real rows of 8 (padding counts invalid)
    lat = mask_to_latent_grid(m)
    assert lat.shape == (1, 1, 3, 2, 2)
    assert torch.equal(lat[0, 0, 0], torch.ones(2, 2) * torch.tensor([[1.0], [0.5]]))
    assert torch.equal(lat[0, 0, 1], torch.zeros(2, 2))
    assert torch.equal(lat[0, 0, 2], torch.tensor([[0.5, 0.0], [0.0, 0.5]]))
    with pytest.raises(ConfigError):
        mask_to_latent_grid(torch.ones(1, 4, 8, 8))  # 4 frames: not 1 + 8k


def test_identity_trajectory_gives_the_input_latents():
    from lyra.tokenizer import Tokenizer

    tok = Tokenizer.from_preset("tiny")
    H, W = 48, 64
    cam = Cameras.from_fov(60.0, W, H)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    img = torch.stack([0.5 + 0.3 * torch.sin(6 * xx), 0.5 + 0.3 * torch.cos(5 * yy), 0.3 + 0.4 * xx * yy])
    depth = torch.full((H, W), 3.0)
    traj = Cameras(cam.K.expand(2, 9, 3, 3), cam.c2w.expand(2, 9, 4, 4), W, H)
    c = warp_conditions(img, depth, cam, traj, tok)
    assert c.latents.shape == (2, 16, 2, 6, 8) and c.mask_latents.shape == (2, 1, 2, 6, 8)
    assert c.mask.all() and torch.equal(c.mask_latents, torch.ones_like(c.mask_latents))
    assert torch.allclose(c.rgb, img.expand(2, 9, 3, H, W), atol=1e-5)
    ref = tok.normalize(tok.encode(img.expand(1, 9, 3, H, W)))
    assert torch.allclose(c.latents, ref.expand(2, -1, -1, -1, -1), atol=1e-4)
    with pytest.raises(ConfigError):
        warp_conditions(img, depth, cam, traj[:, :4], tok)  # 4 frames


# --------------------------------------------------------------------------- the filled-warp anchor
def test_fill_warp_holes_keeps_the_warp_and_continues_its_rim():
    from lyra.teacher.conditioning import fill_warp_holes

    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 3, 24, 40, generator=g)
    mask = torch.rand(2, 3, 24, 40, generator=g) > 0.4
    mask[:, :, :, 10:30] = False  # a hole 20 px wide, as a far view opens
    out = fill_warp_holes(rgb, mask)
    assert out.shape == rgb.shape and out.dtype == rgb.dtype
    seen = mask[:, :, None].expand_as(rgb)
    assert torch.equal(out[seen], rgb[seen])  # the warp itself is untouched
    assert bool((out[~seen] >= 0).all() and (out[~seen] <= 1).all())
    # a flat colour seen in one corner fills the whole frame with that colour; a frame with nothing seen stays black
    flat = torch.zeros(2, 3, 30, 50)
    m = torch.zeros(2, 30, 50, dtype=torch.bool)
    m[0, :4, :6] = True
    flat[0, :, :4, :6] = torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1)
    filled = fill_warp_holes(flat, m)
    torch.testing.assert_close(filled[0], torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1).expand(3, 30, 50))
    assert bool((filled[1] == 0).all())
    # a left-right ramp with its middle missing: the hole rises from the left rim's value to the right one's (a
    # continuation, not a blob), through the middle of the ramp at the hole's centre
    ramp = torch.linspace(0, 1, 64).expand(1, 3, 16, 64).clone()
    m = torch.ones(1, 16, 64, dtype=torch.bool)
    m[:, :, 20:44] = False
    hole = fill_warp_holes(ramp * m[:, None], m)[0, 0, 8, 20:44]
    assert float(ramp[0, 0, 0, 19]) - 0.02 < float(hole[0]) < float(hole[-1]) < float(ramp[0, 0, 0, 44]) + 0.02
    assert abs(float(hole[11:13].mean()) - 0.5) < 0.02 and bool((hole[2:-2].diff() > 0).all())


def test_filled_anchor_samples_the_filled_warp_everywhere_from_a_silent_network(tmp_path):
    """anchor "filled": the anchor is the condition latents in every cell, holes included (the warp anchor is zero
    there); a silent clean-prediction network samples them, the trailing channels of a block code follow them, and
    the mode round-trips through teacher.json with fills_holes."""
    from lyra.teacher.sampler import sample

    model = TeacherDenoiser.from_config(small_config(), seed=6).set_anchor("filled").set_prediction("clean")
    assert model.fills_holes and not TeacherDenoiser.from_config(small_config()).set_anchor("warp").fills_holes
    model.silence_output()
    x, t, c = inputs(seed=4, seen=True)
    assert bool((c.mask_latents < 1).any())  # some cells are not fully seen: the warp anchor is zero there
    torch.testing.assert_close(model.anchor(c), c.latents)
    with torch.no_grad():
        out = sample(model, c, steps=4, noise=x, progress=False)
    torch.testing.assert_close(out, c.latents, atol=1e-5, rtol=1e-5)
    model.save_pretrained(tmp_path / "w")
    assert '"anchor": "filled"' in (tmp_path / "w" / "teacher.json").read_text()
    assert TeacherDenoiser.from_pretrained(tmp_path / "w").fills_holes
    cfg = preset_config("tiny", generated_channels=6)
    cfg["transformer"].update(num_layers=1, max_size=(4, 16, 16))
    block = TeacherDenoiser.from_config(cfg, seed=3).set_anchor("filled").set_prediction("clean")
    with torch.no_grad():
        landed = sample(block, c, steps=4, noise=x, progress=False)
        torch.testing.assert_close(landed[:, 6:], c.latents[:, 6:], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(landed[:, :6], c.latents[:, :6], atol=1e-2)  # a network that speaks moves these
        landed = sample(block.silence_output(), c, steps=4, noise=x, progress=False)
    torch.testing.assert_close(landed, c.latents, atol=1e-5, rtol=1e-5)
