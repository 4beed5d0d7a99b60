"vgot.attention against diffusers: DDPM chain, IP-Adapter pipeline parity, λ = 0, gradients, weights from safetensors, capture."
import copy, warnings
import pytest, torch
from diffusers import DDPMScheduler

from vgot.core import VgotError
from vgot.attention import (make_schedule, q_sample, p_sample, eps_loss, AttentionStore, DecoupledCrossAttnProcessor,
                            install_decoupled_attention, remove_decoupled_attention, set_branch_scale, decoupled_processors,
                            ip_adapter_layer_keys, split_ip_adapter_state_dict)
from vgot.models import load_ip_adapter_weights
from vgot.tiny import tiny_ip_adapter_state_dict




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
        set_branch_scale(pipe.unet, identity_scale=0.0, prev_scale=0.0)
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


# ---- IP-Adapter Plus and all-or-nothing installs ------------------------------------------------------------------

from vgot.attention import check_ip_adapter_state_dict, projection_kind
from vgot.tiny import tiny_ip_adapter_plus_state_dict


def unet_snapshot(unet):
    "What must not change: each processor's type and identity, the projection, its config flag, every parameter."
    return ({n: (type(p), id(p)) for n, p in unet.attn_processors.items()}, unet.encoder_hid_proj, unet.config.encoder_hid_dim_type,
            {k: v.detach().clone() for k, v in unet.state_dict().items()})


def assert_unchanged(unet, snap):
    procs, proj, kind, params = snap
    assert {n: (type(p), id(p)) for n, p in unet.attn_processors.items()} == procs
    assert unet.encoder_hid_proj is proj and unet.config.encoder_hid_dim_type == kind
    assert not hasattr(unet, "_vgot_saved")
    sd = unet.state_dict()
    assert set(sd) == set(params)
    for k, v in params.items(): assert torch.equal(sd[k], v), k


def test_plus_branches_install_run_and_remove(tiny_models):
    "Plus (Resampler) in both branches on the tiny SD UNet: a UNet call uses them, removal gives back exactly what was there."
    unet = tiny_models.t2i.unet
    hid = tiny_models.image_encoder[0].config.hidden_size
    snap = unet_snapshot(unet)
    w1, w2 = tiny_ip_adapter_plus_state_dict(unet, hid, seed=1), tiny_ip_adapter_plus_state_dict(unet, hid, seed=2)
    procs = install_decoupled_attention(unet, {"identity": w1, "prev": w2}, {"identity": 0.6, "prev": 0.4}, image_embed_dim=hid)
    try:
        assert len(procs) == len(w1["ip_adapter"]) // 2
        assert [type(p).__name__ for p in unet.encoder_hid_proj.image_projection_layers] == ["IPAdapterPlusImageProjection"] * 2
        x, text = torch.randn(1, 4, 16, 16), torch.randn(1, 77, unet.config.cross_attention_dim)
        emb = [torch.randn(1, 2, 50, hid), torch.randn(1, 1, 50, hid)]
        with torch.no_grad():
            a = unet(x, torch.tensor(10), text, added_cond_kwargs={"image_embeds": emb}).sample
            set_branch_scale(unet, identity_scale=0.0, prev_scale=0.0)
            b = unet(x, torch.tensor(10), text, added_cond_kwargs={"image_embeds": emb}).sample
        assert (a - b).abs().max() > 1e-4
    finally:
        remove_decoupled_attention(unet)
    assert_unchanged(unet, snap)


def test_plus_matches_diffusers_own_plus_ip_adapter(tiny_models):
    "One Plus branch vs diffusers' load_ip_adapter with the same weights: the same latents."
    pipe = tiny_models.t2i
    hid = tiny_models.image_encoder[0].config.hidden_size
    w = tiny_ip_adapter_plus_state_dict(pipe.unet, hid, seed=5)
    emb = [torch.cat([torch.zeros(1, 1, 50, hid), torch.randn(1, 1, 50, hid, generator=torch.Generator().manual_seed(0))])]
    pipe.load_ip_adapter(copy.deepcopy(w), subfolder=None, weight_name=None, image_encoder_folder=None)
    try:
        pipe.set_ip_adapter_scale(0.7); ref = _run(pipe, emb)
    finally:
        pipe.unload_ip_adapter()
    install_decoupled_attention(pipe.unet, {"identity": w}, {"identity": 0.7})
    try: ours = _run(pipe, emb)
    finally: remove_decoupled_attention(pipe.unet)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def _broken_variants(unet, hid):
    base = tiny_ip_adapter_state_dict(unet, 32)
    plus = lambda: tiny_ip_adapter_plus_state_dict(unet, hid)
    v = {}
    p = plus(); p["image_proj"]["layers.2.0.to_kv.weight"] = torch.zeros(7, 7); v["resampler weight of the wrong shape"] = (p, "'image_proj.layers.2.0.to_kv.weight' has shape (7, 7)")
    p = plus(); del p["image_proj"]["norm_out.bias"]; v["resampler key missing"] = (p, "'image_proj.norm_out.bias' of the plus projection is missing")
    p = plus(); p["image_proj"].update({k.replace("layers.3.", f"layers.{i}."): t for i in (4, 5, 6, 7) for k, t in plus()["image_proj"].items() if k.startswith("layers.3.")})
    v["8 resampler blocks"] = (p, "8 blocks")
    p = plus(); p["image_proj"]["latents"] = p["image_proj"]["latents"].to("meta"); p["image_proj"]["extra.weight"] = torch.zeros(1)
    v["extra image_proj key"] = (p, "unexpected key(s) image_proj.extra.weight")
    p = plus(); del p["ip_adapter"]["5.to_v_ip.weight"]; v["ip_adapter key missing"] = (p, "'ip_adapter.5.to_v_ip.weight'")
    p = plus(); p["ip_adapter"]["1.to_k_ip.weight"] = torch.zeros(65, 32); v["ip_adapter shape"] = (p, "'ip_adapter.1.to_k_ip.weight' has shape (65, 32)")
    p = copy.deepcopy(base); p["ip_adapter"]["99.to_k_ip.weight"] = torch.zeros(1); v["weights for a bigger UNet"] = (p, "unexpected key(s) ip_adapter.99.to_k_ip.weight")
    p = copy.deepcopy(base); p["image_proj"]["proj.weight"] = torch.zeros(4 * 48, 32); v["base for another width"] = (p, "4·32 = 128")
    v["FaceID"] = ({"image_proj": {"perceiver_resampler.proj_in.weight": torch.zeros(1)}, "ip_adapter": base["ip_adapter"]}, "FaceID")
    v["no image_proj"] = ({"ip_adapter": base["ip_adapter"]}, "'image_proj' and 'ip_adapter'")
    return v


def test_a_broken_state_dict_leaves_the_unet_untouched(tiny_models):
    "Whatever is wrong, and in whichever branch (the first branch being fine), the install raises a VgotError naming it and changes nothing."
    unet = tiny_models.t2i.unet
    hid = tiny_models.image_encoder[0].config.hidden_size
    good = tiny_ip_adapter_plus_state_dict(unet, hid, seed=9)
    snap = unet_snapshot(unet)
    for what, (bad, msg) in _broken_variants(unet, hid).items():
        with pytest.raises(VgotError, match="branch prev") as e:
            install_decoupled_attention(unet, {"identity": good, "prev": bad})
        assert msg in str(e.value), (what, str(e.value))
        assert_unchanged(unet, snap)
    with pytest.raises(VgotError, match="takes image features of width 32, the image encoder gives 24"):
        install_decoupled_attention(unet, {"identity": good}, image_embed_dim=24)
    assert_unchanged(unet, snap)


def test_a_failure_while_swapping_puts_everything_back(tiny_models, monkeypatch):
    "If setting the processors fails half-way (after the checks), the old processors and projection are put back."
    import vgot.attention as A
    unet = tiny_models.t2i.unet
    hid = tiny_models.image_encoder[0].config.hidden_size
    snap = unet_snapshot(unet)
    real, calls = A._set_processors, []
    def flaky(u, procs):
        calls.append(1)
        if len(calls) == 1:                                     # the install: half the layers, then a failure
            items = list(procs.items()); real(u, dict(items[: len(items) // 2])); raise RuntimeError("device lost")
        real(u, procs)                                          # the rollback
    monkeypatch.setattr(A, "_set_processors", flaky)
    with pytest.raises(RuntimeError, match="device lost"):
        install_decoupled_attention(unet, {"identity": tiny_ip_adapter_plus_state_dict(unet, hid)})
    assert len(calls) == 2
    assert_unchanged(unet, snap)


def test_install_over_a_diffusers_plus_adapter_and_back(tiny_models):
    "A UNet that already carries diffusers' own Plus IP-Adapter (a Resampler with attention layers): ours goes on and comes off, theirs stays."
    pipe = tiny_models.t2i
    hid = tiny_models.image_encoder[0].config.hidden_size
    pipe.load_ip_adapter(tiny_ip_adapter_plus_state_dict(pipe.unet, hid, seed=4), subfolder=None, weight_name=None, image_encoder_folder=None)
    try:
        unet = pipe.unet
        before = dict(unet.attn_processors); proj = unet.encoder_hid_proj
        install_decoupled_attention(unet, {"identity": tiny_ip_adapter_plus_state_dict(unet, hid, seed=5), "prev": tiny_ip_adapter_state_dict(unet, 32)})
        assert len(decoupled_processors(unet)) == len(ip_adapter_layer_keys(unet))
        remove_decoupled_attention(unet)
        assert unet.encoder_hid_proj is proj and dict(unet.attn_processors) == before
    finally:
        pipe.unload_ip_adapter()
    assert pipe.unet.encoder_hid_proj is None and not decoupled_processors(pipe.unet)


def test_projection_kinds():
    base = {"proj.weight": 0, "proj.bias": 0, "norm.weight": 0, "norm.bias": 0}
    full = {"proj.0.weight": 0, "proj.0.bias": 0, "proj.2.weight": 0, "proj.2.bias": 0, "proj.3.weight": 0, "proj.3.bias": 0}
    assert projection_kind(base) == "base" and projection_kind(full) == "full"
    assert projection_kind({"latents": 0, "proj_in.weight": 0}) == "plus"
    with pytest.raises(VgotError, match="FaceID"): projection_kind({"proj.0.weight": 0, "proj.2.weight": 0, "norm.weight": 0})


def test_full_kind_checked_and_installed():
    "IP-Adapter Full (an MLP over every CLIP token) with published key names: checked, installed, removed."
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=16, cross_attention_dim=32, norm_num_groups=32,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    E = 40
    w = tiny_ip_adapter_state_dict(unet, 24)
    w["image_proj"] = {"proj.0.weight": torch.randn(E, E) * 0.02, "proj.0.bias": torch.zeros(E), "proj.2.weight": torch.randn(32, E) * 0.02,
                       "proj.2.bias": torch.zeros(32), "proj.3.weight": torch.ones(32), "proj.3.bias": torch.zeros(32)}
    assert check_ip_adapter_state_dict(unet, w, image_embed_dim=E) == "full"
    install_decoupled_attention(unet, {"identity": w})
    try:
        with torch.no_grad():
            out = unet(torch.randn(1, 4, 16, 16), torch.tensor(3), torch.randn(1, 77, 32), added_cond_kwargs={"image_embeds": [torch.randn(1, 1, 50, E)]}).sample
        assert out.shape == (1, 4, 16, 16) and torch.isfinite(out).all()
    finally: remove_decoupled_attention(unet)
    assert unet.encoder_hid_proj is None
