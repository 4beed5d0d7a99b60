"The keyframe stage on the tiny preset: conditioning, resume, portraits, bad input, attention capture and the CLI."
import json, warnings
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image

from vgot.core import VgotError, Script, Shot, Character, Keyframe, RunStore, file_sha256
from vgot.media import load_tensors
from vgot.keyframes import KeyframeConfig, generate_keyframes, portrait_rel
from vgot.attention import AttentionStore, decoupled_processors
from vgot.models import Models
from conftest import run_cli




def shot(i, chars=(), refs=None, **kw):
    return Shot(index=i, segment=f"segment {i}", duration=3.0, character=" and ".join(chars) or "an empty quay",
                background="a stone harbour at dusk", relation=f"{' and '.join(chars) or 'waves'} in scene {i}", camera="medium shot",
                characters=list(chars), identity_refs=refs or {}, **kw)


def noise_png(path, seed, size=(32, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def script3():
    return Script("Harbour", [shot(0, ["Ada"], {"Ada": "ada.png"}), shot(1, ["Ada", "Milo"], {"Ada": "ada.png"}), shot(2)],
                  cast=[Character("Ada", "a keeper in a yellow coat"), Character("Milo", "a boy in a red sweater")])


def cfg(**kw):
    "Small and quick: 32x32 keyframes, one denoising step (still with CFG, so every conditioning path runs)."
    return KeyframeConfig(**{"width": 32, "height": 32, "steps": 1, **kw})


def latent(store, kf): return load_tensors(store.path(kf.latent))["latent"]


def test_a_keyframe_per_shot_with_identity_and_portraits(tiny_models, store):
    noise_png(store.assets_dir / "ada.png", 1)
    kfs = generate_keyframes(script3(), tiny_models, cfg(), store)
    assert [k.shot for k in kfs] == [0, 1, 2]
    f = tiny_models.t2i.vae_scale_factor
    for k in kfs:
        assert Image.open(store.path(k.image)).size == (32, 32)
        lat = latent(store, k)
        assert lat.shape == (4, 32 // f, 32 // f) and torch.isfinite(lat).all()
        assert Keyframe.load(store.path(f"keyframes/{k.shot:03d}.json")) == k
        assert store.is_done(f"keyframe/{k.shot:03d}")
    # Milo has no identity image: one portrait, generated once, recorded, in assets/characters/portraits/
    assert (store.assets_dir / portrait_rel("Milo")).exists() and store.is_done("portrait/milo")
    assert not (store.assets_dir / portrait_rel("Ada")).exists()
    assert len({k.seed for k in kfs}) == 3
    assert not decoupled_processors(tiny_models.t2i.unet)                 # the UNet is left as it was


def _two_shots(tiny_models, root, ada_seed=1, swap_prev=False, **kw):
    "Keyframe 1's latent; with swap_prev, shot 0 is lit differently, so the previous keyframe is another image (shot 1 is the same)."
    from dataclasses import replace
    st = RunStore(root)
    noise_png(st.assets_dir / "ada.png", ada_seed)
    s0 = replace(shot(0), hdr="harsh red light", prompt="") if swap_prev else shot(0)
    sc = Script("t", [s0, shot(1, ["Ada"], {"Ada": "ada.png"})])
    return latent(st, generate_keyframes(sc, tiny_models, cfg(**{"steps": 2, **kw}), st)[1])


def test_previous_keyframe_conditions_the_next_and_lambda_prev_zero_removes_it(tiny_models, tmp_path):
    a, b = _two_shots(tiny_models, tmp_path / "a"), _two_shots(tiny_models, tmp_path / "b", swap_prev=True)
    assert (a - b).abs().max() > 1e-5          # CPU runs are bit-identical: any difference is the conditioning
    a0, b0 = (_two_shots(tiny_models, tmp_path / n, swap_prev=s, prev_scale=0.0) for n, s in (("c", False), ("d", True)))
    assert torch.equal(a0, b0)


def test_identity_image_conditions_the_keyframe_and_lambda_id_zero_removes_it(tiny_models, tmp_path):
    a, b = _two_shots(tiny_models, tmp_path / "a", ada_seed=1), _two_shots(tiny_models, tmp_path / "b", ada_seed=2)
    assert (a - b).abs().max() > 1e-5          # CPU runs are bit-identical: any difference is the conditioning
    a0, b0 = (_two_shots(tiny_models, tmp_path / n, ada_seed=s, identity_scale=0.0) for n, s in (("c", 1), ("d", 2)))
    assert torch.equal(a0, b0)


def test_resume_skips_finished_keyframes_and_redoes_what_changed(tiny_models, store):
    noise_png(store.assets_dir / "ada.png", 1)
    sc = script3()
    kfs = generate_keyframes(sc, tiny_models, cfg(), store)
    portrait = store.assets_dir / portrait_rel("Milo")
    before = {p: file_sha256(store.path(p)) for k in kfs for p in (k.image, k.latent)} | {"portrait": file_sha256(portrait)}
    calls = []
    h = tiny_models.t2i.unet.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        assert generate_keyframes(sc, tiny_models, cfg(), store) == kfs
    finally:
        h.remove()
    assert calls == []
    assert before == {p: file_sha256(store.path(p)) for k in kfs for p in (k.image, k.latent)} | {"portrait": file_sha256(portrait)}
    # a new identity image for Ada redoes shots 0 and 1, which show her
    noise_png(store.assets_dir / "ada.png", 5)
    generate_keyframes(sc, tiny_models, cfg(), store)
    assert all(file_sha256(store.path(k.latent)) != before[k.latent] for k in kfs[:2])
    assert file_sha256(portrait) == before["portrait"]                   # the portrait is reused
    # a new previous keyframe redoes the next shot only (one UNet call: one step, CFG batched)
    lat01 = [file_sha256(store.path(k.latent)) for k in kfs[:2]]
    noise_png(store.path(kfs[1].image), 9)
    calls.clear(); h = tiny_models.t2i.unet.register_forward_pre_hook(lambda *a: calls.append(1))
    try: generate_keyframes(sc, tiny_models, cfg(), store)
    finally: h.remove()
    assert len(calls) == 1 and [file_sha256(store.path(k.latent)) for k in kfs[:2]] == lat01
    # a deleted keyframe file is redone
    store.path(kfs[2].latent).unlink()
    generate_keyframes(sc, tiny_models, cfg(), store)
    assert store.path(kfs[2].latent).exists()


def test_same_seed_same_keyframes(tiny_models, tmp_path):
    lat = []
    for n in ("a", "b"):
        st = RunStore(tmp_path / n); noise_png(st.assets_dir / "ada.png", 1)
        lat.append([latent(st, k) for k in generate_keyframes(script3(), tiny_models, cfg(seed=3), st)])
    assert all(torch.equal(x, y) for x, y in zip(*lat))


def test_bad_identity_images(tiny_models, store):
    sc = Script("t", [shot(0), shot(1, ["Milo"], {"Milo": "milo.png"})])
    with pytest.raises(VgotError, match=r"shot 1: identity image of Milo: .*milo.png.* does not exist"):
        generate_keyframes(sc, tiny_models, cfg(), store)
    assert not store.path("keyframes/001.png").exists()
    (store.assets_dir / "milo.png").write_bytes(b"GIF89a but not really")
    with pytest.raises(VgotError, match=r"shot 1: identity image of Milo: image .*milo.png: not a readable image"):
        generate_keyframes(sc, tiny_models, cfg(), store)
    assert sorted(p.name for p in store.path("keyframes").iterdir()) == ["000.json", "000.latent.safetensors", "000.png"]
    assert not store.is_done("keyframe/001")
    noise_png(store.assets_dir / "milo.png", 3, size=(100, 40))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        generate_keyframes(sc, tiny_models, cfg(), store)
    assert any("shot 1: identity image of Milo" in str(x.message) and "100x40; resized to 32x32" in str(x.message) for x in w)
    assert store.is_done("keyframe/001")


def test_nan_latents_stop_the_stage_before_anything_is_written(tiny_models, store):
    unet = tiny_models.t2i.unet
    h = unet.register_forward_hook(lambda m, a, o: (o[0] * float("nan"),))
    try:
        with pytest.raises(VgotError, match="shot 0: the latents became NaN or inf"):
            generate_keyframes(Script("t", [shot(0)]), tiny_models, cfg(), store)
    finally:
        h.remove()
    assert not store.path("keyframes").exists() or not any(store.path("keyframes").iterdir())
    assert not any(k.startswith("keyframe/") for k in store.manifest["artifacts"])
    assert not decoupled_processors(unet)


def test_attention_capture_through_the_stage(tiny_models, store):
    noise_png(store.assets_dir / "ada.png", 1)
    att = AttentionStore(layers=["up_blocks"], res=8, rows=slice(1, 2))
    sc = Script("t", [shot(0, ["Ada"], {"Ada": "ada.png"}), shot(1, ["Ada"], {"Ada": "ada.png"})])
    generate_keyframes(sc, tiny_models, cfg(steps=2), store, attention_store=att)
    assert sorted(att.runs) == [0, 1] and att.maps is att.runs[1]              # one run per shot, by shot index
    for maps in att.runs.values():
        assert {k[0] for k in maps} == {0, 1}                                   # steps 0 and 1 of each shot
        assert {k[2] for k in maps} == {"text", "identity", "prev"}
        assert all(k[1].startswith("up_blocks") for k in maps)
        assert all(m.shape[0] == 1 and max(m.shape[-2:]) <= 8 for m in maps.values())
    assert att.nbytes == sum(m.numel() * 2 for maps in att.runs.values() for m in maps.values())


def test_config_from_preset_and_validation():
    assert KeyframeConfig.from_preset("sdxl").width == 1024
    with pytest.raises(VgotError, match="prev_scale = -1"):
        KeyframeConfig.from_preset("tiny", prev_scale=-1)


def test_cli(tmp_path, monkeypatch):
    run = tmp_path / "run"; st = RunStore(run)
    noise_png(st.assets_dir / "ada.png", 1)
    st.script_path.write_text(script3().to_json())
    r = run_cli("keyframes", run, "--preset", "tiny", "--quiet", "--prev-scale", "0.3", "--width", "32", "--height", "32", "--steps", "1")
    assert r.returncode == 0, r.stderr
    assert "shot   2: keyframes/002.png" in r.stdout
    assert all((run / f"keyframes/{i:03d}.json").exists() for i in range(3))
    m = json.loads((run / "run.json").read_text())
    assert set(m["artifacts"]) >= {"keyframe/000", "keyframe/001", "keyframe/002", "portrait/milo"}
    r = run_cli("keyframes", tmp_path / "empty-but-there", "--preset", "tiny")
    assert r.returncode == 2 and "not a run folder" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "r2").mkdir()
    r = run_cli("keyframes", tmp_path / "r2")
    assert r.returncode == 2 and "script.json: not found" in r.stderr


def tiny_sdxl(root: Path) -> "Preset":
    "A tiny random SDXL pipeline (two text encoders, text_time embedding) saved as a folder, and a preset that uses it."
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    from safetensors.torch import save_file
    from vgot.models import Preset, ModelRef
    from vgot.tiny import tiny_clip_tokenizer, tiny_ip_adapter_state_dict, tiny_ip_adapter_plus_state_dict
    torch.manual_seed(0)
    tok = tiny_clip_tokenizer()
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
                                cross_attention_dim=64, norm_num_groups=1)
    vae = AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, sample_size=32, norm_num_groups=32)
    tc = dict(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37, num_attention_heads=4,
              num_hidden_layers=2, vocab_size=len(tok), max_position_embeddings=77, projection_dim=32)
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=CLIPTextModel(CLIPTextConfig(**tc)), text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**tc)),
                                     tokenizer=tok, tokenizer_2=tok, unet=unet, add_watermarker=False,
                                     scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1, clip_sample=False))
    pipe.save_pretrained(root / "sdxl", safe_serialization=True)
    w = tiny_ip_adapter_state_dict(unet, Models("tiny").image_encoder[0].config.projection_dim)
    (root / "ip").mkdir()
    save_file({f"{k}.{n}": t.contiguous() for k, d in w.items() for n, t in d.items()}, str(root / "ip" / "ip.safetensors"))
    # Plus weights in the SDXL layout: the Resampler's width is min(cross_attention_dim, 1280), as published (1280 for 2048)
    wp = tiny_ip_adapter_plus_state_dict(unet, Models("tiny").image_encoder[0].config.hidden_size)
    save_file({f"{k}.{n}": t.contiguous() for k, d in wp.items() for n, t in d.items()}, str(root / "ip" / "ip_plus.safetensors"))
    return Preset("tiny-sdxl-test", t2i=str(root / "sdxl"), t2i_kind="sdxl", image_encoder="tiny:image_encoder",
                  ip_adapter=ModelRef(str(root / "ip"), weight_name="ip.safetensors"), i2v={}, llm="tiny:llm",
                  ip_adapter_plus=ModelRef(str(root / "ip"), weight_name="ip_plus.safetensors"))


def test_sdxl_keyframes_with_both_branches(tmp_path):
    "The same stage on an SDXL pipeline (the kind says so): keyframes, and the previous keyframe still conditions the next."
    from diffusers import StableDiffusionXLPipeline
    from vgot.models import Models as M
    models = M(tiny_sdxl(tmp_path), device="cpu")
    assert isinstance(models.t2i, StableDiffusionXLPipeline)
    lat = []
    from dataclasses import replace
    for name, swap in (("a", False), ("b", True)):
        st = RunStore(tmp_path / name); noise_png(st.assets_dir / "ada.png", 1)
        s0 = replace(shot(0), hdr="harsh red light", prompt="") if swap else shot(0)    # another previous keyframe, same shot 1
        sc = Script("t", [s0, shot(1, ["Ada"], {"Ada": "ada.png"})])
        kfs = generate_keyframes(sc, models, cfg(steps=2), st)
        lat.append(latent(st, kfs[1]))
    assert lat[0].shape == (4, 32 // models.t2i.vae_scale_factor, 32 // models.t2i.vae_scale_factor)
    assert (lat[0] - lat[1]).abs().max() > 1e-5
    assert not decoupled_processors(models.t2i.unet)



# ---- IP-Adapter Plus through the stage -----------------------------------------------------------------------------

def unet_state(unet):
    return ({n: (type(p), id(p)) for n, p in unet.attn_processors.items()}, unet.encoder_hid_proj, unet.config.encoder_hid_dim_type)


def test_plus_format_through_the_stage(tiny_models, store):
    "ip_adapter_format='plus': every keyframe written, the images condition them, and the UNet is left exactly as before."
    unet = tiny_models.t2i.unet
    before = unet_state(unet)
    noise_png(store.assets_dir / "ada.png", 1)
    kfs = generate_keyframes(script3(), tiny_models, cfg(ip_adapter_format="plus"), store)
    assert [k.shot for k in kfs] == [0, 1, 2] and all(torch.isfinite(latent(store, k)).all() for k in kfs)
    assert unet_state(unet) == before and unet.encoder_hid_proj is None
    base = RunStore(store.root.parent / "base"); noise_png(base.assets_dir / "ada.png", 1)
    kb = generate_keyframes(script3(), tiny_models, cfg(), base)
    assert (latent(store, kfs[0]) - latent(base, kb[0])).abs().max() > 1e-5          # other weights, another keyframe
    assert store.manifest["artifacts"]["keyframe/000"]["inputs"] != base.manifest["artifacts"]["keyframe/000"]["inputs"]   # the format is hashed


def test_plus_identity_image_matters(tiny_models, tmp_path):
    "Through the Plus Resampler the identity image still conditions the keyframe (and λ_id = 0 removes it)."
    out = {}
    for name, seed, λ in (("a", 1, 0.6), ("b", 2, 0.6), ("c", 1, 0.0), ("d", 2, 0.0)):
        st = RunStore(tmp_path / name); noise_png(st.assets_dir / "ada.png", seed)
        kf = generate_keyframes(Script("t", [shot(0, ["Ada"], {"Ada": "ada.png"})]), tiny_models, cfg(ip_adapter_format="plus", identity_scale=λ), st)
        out[name] = latent(st, kf[0])
    assert (out["a"] - out["b"]).abs().max() > 1e-5
    torch.testing.assert_close(out["c"], out["d"])


def test_broken_weights_stop_the_stage_before_anything_changes(tiny_models, store):
    "Malformed Plus weights: a VgotError naming the key, no keyframe written, the UNet untouched."
    unet = tiny_models.t2i.unet
    before = unet_state(unet)
    good = tiny_models.ip_adapter_weights_of("plus")
    bad = {"image_proj": {k: v for k, v in good["image_proj"].items() if k != "layers.3.1.1.weight"}, "ip_adapter": good["ip_adapter"]}
    with pytest.raises(VgotError, match="'image_proj.layers.3.1.1.weight' of the plus projection is missing"):
        generate_keyframes(Script("t", [shot(0)]), tiny_models, cfg(ip_adapter_format="plus"), store, branch_weights={"identity": good, "prev": bad})
    assert unet_state(unet) == before and not hasattr(unet, "_vgot_saved")
    assert not store.path("keyframes/000.png").exists()


def test_sdxl_keyframes_with_plus_weights(tmp_path):
    "SDXL layout: Plus weights (Resampler to cross_attention_dim 64, text_time UNet) through the stage, UNet restored."
    from vgot.models import Models as M
    models = M(tiny_sdxl(tmp_path), device="cpu")
    unet = models.t2i.unet
    before = unet_state(unet)
    st = RunStore(tmp_path / "run"); noise_png(st.assets_dir / "ada.png", 1)
    kfs = generate_keyframes(Script("t", [shot(0, ["Ada"], {"Ada": "ada.png"}), shot(1, ["Ada"], {"Ada": "ada.png"})]), models,
                             cfg(steps=2, ip_adapter_format="plus"), st)
    assert len(kfs) == 2 and all(torch.isfinite(latent(st, k)).all() for k in kfs)
    assert unet_state(unet) == before and unet.encoder_hid_proj is None


def test_vgot_run_with_plus_weights(tmp_path, capsys):
    "`vgot run STORY --set keyframes.ip_adapter_format=plus` on the tiny preset, in process through vgot.cli.main."
    from conftest import STORIES
    import vgot.cli as cli
    run = tmp_path / "run"
    rc = cli.main(["run", str(STORIES / "fox_and_crow.txt"), "--run-dir", str(run), "--quiet", "--stop-after", "keyframes",
                   "--set", "keyframes.ip_adapter_format=plus", "--set", "keyframes.steps=1"])
    assert rc == 0, capsys.readouterr().err
    cfgs = json.loads((run / "run.json").read_text())
    assert "plus" in json.dumps(cfgs)
    kf = sorted(run.glob("keyframes/[0-9][0-9][0-9].png"))
    assert kf and all(Keyframe.load(p.with_suffix(".json")) for p in kf)


# --- issue 14: non-Latin names, prompts within the token budget, a resume with nothing to do --------------------------

def test_non_latin_names_get_their_own_stable_portraits(tiny_models, store):
    "Мария and Иван used to share portraits/character.png (one identity, redrawn on every resume)."
    assert portrait_rel("Ada") == "portraits/ada.png" and portrait_rel("Old Tom") == "portraits/old-tom.png"  # ASCII unchanged
    ru = Script("Сказка", [shot(0, ["Мария"]), shot(1, ["Иван"]), shot(2, ["Мария", "Иван"])],
                cast=[Character("Мария", "a girl in a blue scarf"), Character("Иван", "a boy with a kite")])
    generate_keyframes(ru, tiny_models, cfg(), store)
    m, i = (store.assets_dir / portrait_rel(n) for n in ("Мария", "Иван"))
    assert m != i and m.is_file() and i.is_file() and file_sha256(m) != file_sha256(i)
    assert portrait_rel("Мария") == portrait_rel("Мария") and portrait_rel("Мария").isascii()
    keys = {k for k in store.manifest["artifacts"] if k.startswith("portrait/")}
    assert len(keys) == 2, keys
    before = {p: p.stat().st_mtime_ns for p in (m, i)}
    generate_keyframes(ru, tiny_models, cfg(), store)                       # a resume redraws neither
    assert {p: p.stat().st_mtime_ns for p in (m, i)} == before


def test_prompts_are_fitted_to_the_token_budget_with_one_warning(tiny_models, store, monkeypatch, capfd):
    import vgot.keyframes as K
    seen = []
    real = K.render
    def spy(pipe, prompt, *a, **kw):
        seen.append(prompt); return real(pipe, prompt, *a, **kw)
    monkeypatch.setattr(K, "render", spy)
    count, budget = K.token_budget(tiny_models.t2i)
    assert budget == tiny_models.t2i.tokenizer.model_max_length - 2
    short = shot(0, prompt="a quay")                                        # fits: used exactly as written
    long = shot(1, ["Ada"], hdr="a storm rolling in over a grey sea at the end of the day")
    assert count(long.prompt) > budget
    noise_png(store.assets_dir / "ada.png", 1)
    long.identity_refs = {"Ada": "ada.png"}
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        generate_keyframes(Script("t", [short, long, shot(2)]), tiny_models, cfg(), store)
    assert seen[0] == "a quay"
    assert all(count(p) <= budget for p in seen), [(p, count(p)) for p in seen]
    assert seen[1].startswith("Ada in scene 1")                             # the most important domain leads
    fit = [str(x.message) for x in w if "prompt(s) were longer than the text encoder's" in str(x.message)]
    assert len(fit) == 1 and "shot 1:" in fit[0] and f"{budget} tokens" in fit[0], fit
    err = capfd.readouterr().err
    assert "truncated" not in err and "can only handle sequences" not in err, err    # no per-prompt CLIP truncation


def test_a_resume_with_nothing_to_do_loads_no_model(tiny_models, store):
    noise_png(store.assets_dir / "ada.png", 1)
    kfs = generate_keyframes(script3(), tiny_models, cfg(), store)          # Milo's portrait is generated too
    class NoLoading(Models):
        def _get(self, key, fn): raise AssertionError(f"a resume with nothing to do loaded {key}")
    again = generate_keyframes(script3(), NoLoading("tiny", device="cpu"), cfg(), store)
    assert again == kfs
    (store.root / kfs[2].image).unlink()                                    # one keyframe missing: that one is redone
    with pytest.raises(AssertionError, match="loaded"):
        generate_keyframes(script3(), NoLoading("tiny", device="cpu"), cfg(), store)


def test_identity_scale_is_the_one_name_from_preset_to_kernel(tiny_models, store):
    from vgot.models import get_preset
    assert "identity_scale" in get_preset("tiny").defaults and "ip_scale" not in get_preset("tiny").defaults
    assert KeyframeConfig.from_preset("tiny").identity_scale == get_preset("tiny").defaults["identity_scale"]
    with pytest.raises(VgotError, match="did you mean 'identity_scale'"):
        KeyframeConfig.from_preset("tiny", identity_scal=0.5)
    seen = {}
    noise_png(store.assets_dir / "ada.png", 1)
    from vgot.attention import DecoupledCrossAttnProcessor
    real = DecoupledCrossAttnProcessor.set_scale
    def spy(self, **scales):
        seen.update(scales); return real(self, **scales)
    DecoupledCrossAttnProcessor.set_scale = spy
    try: generate_keyframes(Script("t", [shot(0, ["Ada"], {"Ada": "ada.png"})]), tiny_models, cfg(identity_scale=0.35), store)
    finally: DecoupledCrossAttnProcessor.set_scale = real
    assert seen == {"identity_scale": 0.35, "prev_scale": 0.0}
