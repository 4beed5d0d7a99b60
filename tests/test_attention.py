"vgot.attention against diffusers: DDPM chain, IP-Adapter pipeline parity, λ = 0, gradients, weights from safetensors, capture."
import copy, warnings
import pytest, torch
from diffusers import DDPMScheduler

from vgot.core import VgotError
from vgot.attention import (make_schedule, q_sample, p_sample, eps_loss, AttentionStore, DecoupledCrossAttnProcessor,
                            install_decoupled_attention, remove_decoupled_attention, set_branch_scale, decoupled_processors,
                            ip_adapter_layer_keys, split_ip_adapter_state_dict)
from vgot.models import tiny_ip_adapter_state_dict, load_ip_adapter_weights




def test_reverse_chain_matches_ddpm_scheduler():
    "50 reverse steps with a fixed 'model' give the same x_0 as DDPMScheduler.step, noise from the same generators."
    ref = DDPMScheduler(num_train_timesteps=50, beta_schedule="linear", clip_sample=False, variance_type="fixed_small")
    ref.set_timesteps(50)
    s = make_schedule(ref.betas)
    g = torch.Generator().manual_seed(3)
    x_ours = x_ref = torch.randn(2, 4, 8, 8, generator=g)
    model = lambda x, t: torch.sin(x * (t + 1) / 50)            # any deterministic ε_θ
    for t in ref.timesteps.tolist():
        x_ref = ref.step(model(x_ref, t), t, x_ref, generator=torch.Generator().manual_seed(t)).prev_sample
        z = torch.randn(x_ours.shape, generator=torch.Generator().manual_seed(t))
        x_ours = p_sample(x_ours, t, model(x_ours, t), s, z).float()
    torch.testing.assert_close(x_ours, x_ref, atol=1e-4, rtol=1e-4)


def test_eps_loss_is_zero_only_for_the_true_noise():
    s = make_schedule(torch.linspace(1e-4, 0.02, 100, dtype=torch.float64))
    x0, ε = torch.randn(3, 4), torch.randn(3, 4)
    x_t = q_sample(x0, torch.tensor([5, 50, 99]), s, ε)
    assert x_t.shape == x0.shape
    assert eps_loss(ε, ε) == 0 and eps_loss(ε, ε + 0.1) > 0


def _embeds(dim, n_id=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    # (negative + positive, n_images, dim) per branch: zeros first, as diffusers' IP-Adapter does for CFG
    pos_id, pos_prev = torch.randn(1, n_id, dim, generator=g), torch.randn(1, 1, dim, generator=g)
    return [torch.cat([torch.zeros_like(pos_id), pos_id]), torch.cat([torch.zeros_like(pos_prev), pos_prev])]


def _run(pipe, embeds=None, seed=0):
    kw = {"ip_adapter_image_embeds": embeds} if embeds is not None else {}
    return pipe("a lighthouse in a storm", negative_prompt="blurry", num_inference_steps=2, guidance_scale=5.0, width=64, height=64,
                generator=torch.Generator().manual_seed(seed), output_type="latent", **kw).images


def test_pipeline_parity_with_diffusers_ip_adapter(tiny_models):
    "Two branches vs diffusers' two IP-Adapters with the same weights and scales: the same latents."
    pipe = tiny_models.t2i
    dim = tiny_models.image_encoder[0].config.projection_dim
    w1, w2 = tiny_ip_adapter_state_dict(pipe.unet, dim, seed=1), tiny_ip_adapter_state_dict(pipe.unet, dim, seed=2)
    emb = _embeds(dim)
    pipe.load_ip_adapter([copy.deepcopy(w1), copy.deepcopy(w2)], subfolder=[None, None], weight_name=[None, None], image_encoder_folder=None)
    try:
        pipe.set_ip_adapter_scale([0.6, 0.4])
        ref = _run(pipe, emb)
    finally:
        pipe.unload_ip_adapter()
    install_decoupled_attention(pipe.unet, {"identity": w1, "prev": w2}, {"identity": 0.6, "prev": 0.4})
    try:
        ours = _run(pipe, emb)
        set_branch_scale(pipe.unet, identity=0.0, prev=0.0)
        zero = _run(pipe, emb)
    finally:
        remove_decoupled_attention(pipe.unet)
    plain = _run(pipe)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(zero, plain, atol=1e-6, rtol=1e-6)            # every λ = 0: the stock pipeline
    assert (ours - plain).abs().max() > 1e-3                                  # and the branches do something
    assert not decoupled_processors(pipe.unet) and pipe.unet.encoder_hid_proj is None


def test_gradients_reach_every_branch_projection(tiny_models):
    pipe = tiny_models.t2i
    unet = pipe.unet
    dim = tiny_models.image_encoder[0].config.projection_dim
    procs = install_decoupled_attention(unet, {"identity": tiny_ip_adapter_state_dict(unet, dim, seed=1),
                                               "prev": tiny_ip_adapter_state_dict(unet, dim, seed=2)}, {"identity": 0.5, "prev": 0.5})
    try:
        unet.requires_grad_(False)
        for p in procs.values(): p.requires_grad_(True)
        x, ε = torch.randn(1, 4, 32, 32), torch.randn(1, 4, 32, 32)
        emb = [e[1:] for e in _embeds(dim)]
        out = unet(x, torch.tensor(500), torch.randn(1, 77, unet.config.cross_attention_dim), added_cond_kwargs={"image_embeds": emb}).sample
        eps_loss(ε, out).backward()
        for name, p in procs.items():
            for b in ("identity", "prev"):
                assert p.to_k_ip[b].weight.grad is not None and p.to_k_ip[b].weight.grad.abs().sum() > 0, (name, b)
                assert p.to_v_ip[b].weight.grad.abs().sum() > 0, (name, b)
        assert all(q.grad is None for q in unet.conv_in.parameters())
    finally:
        remove_decoupled_attention(unet); unet.requires_grad_(True)


def test_weights_from_safetensors_land_in_the_branches(tiny_models):
    "The tiny preset's IP-Adapter safetensors file, loaded as published weights are, goes into each branch unchanged."
    unet = tiny_models.t2i.unet
    w = load_ip_adapter_weights(tiny_models.preset.ip_adapter)
    keys = ip_adapter_layer_keys(unet)
    procs = install_decoupled_attention(unet, {"identity": w, "prev": w})
    try:
        for name, p in procs.items():
            torch.testing.assert_close(p.to_k_ip["prev"].weight, w["ip_adapter"][f"{keys[name]}.to_k_ip.weight"])
            torch.testing.assert_close(p.to_v_ip["identity"].weight, w["ip_adapter"][f"{keys[name]}.to_v_ip.weight"])
        proj = unet.encoder_hid_proj.image_projection_layers[0]
        torch.testing.assert_close(proj.image_embeds.weight, w["image_proj"]["proj.weight"])
    finally:
        remove_decoupled_attention(unet)


def test_wrong_weights_are_refused_by_name(tiny_models):
    unet = tiny_models.t2i.unet
    w = tiny_ip_adapter_state_dict(unet, 32)
    k = next(iter(w["ip_adapter"]))
    bad = {"image_proj": w["image_proj"], "ip_adapter": {**w["ip_adapter"], k: torch.zeros(3, 3)}}
    with pytest.raises(VgotError, match=f"'ip_adapter.{k}' has shape"):
        install_decoupled_attention(unet, {"identity": bad})
    remove_decoupled_attention(unet)
    with pytest.raises(VgotError, match="'image_proj' and 'ip_adapter'"):
        install_decoupled_attention(unet, {"identity": {"ip_adapter": {}}})
    with pytest.raises(VgotError, match="not in the IP-Adapter layout"):
        split_ip_adapter_state_dict({"adapter.1.to_k_ip.weight": torch.zeros(1)})
    assert not decoupled_processors(unet)


def test_attention_capture_in_a_pipeline_run(tiny_models):
    "Maps of the chosen layers and steps, per text token and per branch, downsampled, within the memory bound."
    pipe = tiny_models.t2i
    dim = tiny_models.image_encoder[0].config.projection_dim
    w = tiny_ip_adapter_state_dict(pipe.unet, dim)
    store = AttentionStore(layers=["up_blocks"], steps=[1], res=8, rows=slice(1, 2), latent_hw=(32, 32))
    procs = install_decoupled_attention(pipe.unet, {"identity": w, "prev": w}, {"identity": 0.6, "prev": 0.0}, store=store)
    try:
        pipe("a fox", num_inference_steps=2, guidance_scale=5.0, width=64, height=64, generator=torch.Generator().manual_seed(0),
             ip_adapter_image_embeds=_embeds(dim), output_type="latent", callback_on_step_end=store.on_step_end)
    finally:
        remove_decoupled_attention(pipe.unet)
    up = sorted(n for n in procs if n.startswith("up_blocks"))
    assert {k[0] for k in store.maps} == {1} and {k[1] for k in store.maps} == set(up)
    assert store.branches == ["identity", "prev", "text"]               # prev is recorded even at λ = 0
    text, ident, prev = (store.get(1, up[0], b) for b in ("text", "identity", "prev"))
    assert text.shape[:2] == (1, 77) and max(text.shape[-2:]) <= 8 and text.dtype == torch.float16
    assert ident.shape[:2] == (1, 2 * 4) and prev.shape[:2] == (1, 4)   # 2 identity images · 4 tokens; 1 keyframe · 4 tokens
    torch.testing.assert_close(text.float().sum(1), torch.ones_like(text[:, 0]).float(), atol=1e-2, rtol=0)
    assert store.nbytes == sum(m.numel() * 2 for m in store.maps.values())
    assert store.aggregate("text").shape[:2] == (1, 77)
    bounded = AttentionStore(max_bytes=store.nbytes // 2, rows=slice(1, 2), steps=[1], layers=["up_blocks"])
    for p in procs.values(): p.store = bounded
    bounded.step = 1
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        for (s, l, b), m in store.maps.items():
            bounded.add(l, b, torch.rand(2, 2, 32 * 32, m.shape[1]).softmax(-1))
    assert bounded.nbytes <= bounded.max_bytes and bounded.dropped > 0


def test_processor_refuses_mismatched_branches():
    from diffusers.models.attention_processor import Attention
    attn = Attention(query_dim=32, cross_attention_dim=16, heads=2, dim_head=16)
    attn.set_processor(DecoupledCrossAttnProcessor(32, 16, ["identity", "prev"]))
    with pytest.raises(VgotError, match="got 1 image-token tensors for branches"):
        attn(torch.randn(1, 4, 32), encoder_hidden_states=(torch.randn(1, 7, 16), [torch.randn(1, 4, 16)]))
    with pytest.raises(VgotError, match="at least one image branch"):
        DecoupledCrossAttnProcessor(32, 16, [])
