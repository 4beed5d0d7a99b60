"""Keyframes: vgot's stage vs diffusers' own IP-Adapter pipeline, same shots, models and weights; and attention capture.

For each model size (the tiny preset, and a mid-sized random UNet at low resolution) the same shots go through
  diffusers: `pipe.load_ip_adapter([w, w])` (identity + previous keyframe as two IP-Adapters), per shot
             `set_ip_adapter_scale` and `pipe(..., ip_adapter_image_embeds=...)`, embeddings from the same CLIP encoder;
  vgot:      `generate_keyframes` (DecoupledCrossAttnProcessor branches with the same weights), which also writes the
             PNG, latent, JSON and manifest of every keyframe.
Each side runs `--repeats` times, alternating, after a warm-up of both; the table shows the median of them and
vgot / diffusers. Target: ratio <= 1.05. Then vgot with an AttentionStore recording every layer and step: its stored
bytes, the largest transient softmax it computed, and the time ratio against vgot without capture (medians too).
Writes (replaces) its section of bench/RESULTS.md.

    python bench/bench_keyframes.py [--repeats 5] [--threads 1] [--no-write]
"""
import argparse, os, shutil, sys, tempfile, time, warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VGOT_HOME", str(Path(__file__).resolve().parents[1] / ".vgot_home"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import numpy as np, torch
from PIL import Image
import diffusers.utils.logging as _dlog
_dlog.set_verbosity_error()   # the baseline pipeline warns on every load_ip_adapter call; the table is what matters here

from vgot.core import Script, Shot, Character, RunStore, derive_seed, make_generator
from vgot.models import Models, Preset, ModelRef, register_preset
from vgot.tiny import tiny_ip_adapter_state_dict
from vgot.keyframes import KeyframeConfig, generate_keyframes, encode_images, branch_embeds
from vgot.attention import AttentionStore
from _results import machine, md_table, median, write_section


def make_script(n_shots: int) -> Script:
    "n shots alternating two characters, each with an identity image (no portraits: diffusers has no such step)."
    names = ["Ada", "Milo"]
    shots = []
    for i in range(n_shots):
        chars = names[: 1 + i % 2]
        shots.append(Shot(index=i, segment=f"segment {i}", duration=3.0, character=" and ".join(chars), background="a harbour at dusk",
                          relation=f"{' and '.join(chars)} walk along the quay, scene {i}", camera="medium shot", characters=chars,
                          identity_refs={n: f"{n.lower()}.png" for n in chars}))
    return Script("bench", shots, cast=[Character(n, f"{n} in a coat") for n in names])


def write_identities(store: RunStore, size):
    for k, n in enumerate(["ada", "milo"]):
        store.assets_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(store.assets_dir / f"{n}.png")


def run_diffusers(script: Script, models: Models, cfg: KeyframeConfig, weights: dict, store: RunStore):
    "The same shots through diffusers' own IP-Adapter path: two adapters, per-shot scales, ip_adapter_image_embeds."
    pipe = models.t2i
    pipe.load_ip_adapter([weights, weights], subfolder=[None, None], weight_name=[None, None], image_encoder_folder=None)
    try:
        prev, zero = None, None
        for shot in script.shots:
            ids = [Image.open(store.asset(shot.identity_refs[n])).convert("RGB") for n in shot.characters]
            e_id = encode_images(ids, models)
            zero = torch.zeros_like(e_id[:1])
            e_prev = encode_images([prev], models) if prev is not None else zero
            pipe.set_ip_adapter_scale([cfg.identity_scale, cfg.prev_scale if prev is not None else 0.0])
            out = pipe(prompt=shot.prompt, negative_prompt=cfg.negative_prompt, num_inference_steps=cfg.steps,
                       guidance_scale=cfg.guidance_scale, width=cfg.width, height=cfg.height,
                       generator=make_generator(derive_seed(cfg.seed, "keyframes", shot.index)),
                       ip_adapter_image_embeds=[branch_embeds(e_id, True), branch_embeds(e_prev, True)])
            prev = out.images[0]
    finally:
        pipe.unload_ip_adapter()


def run_vgot(script, models, cfg, store, attention_store=None):
    return generate_keyframes(script, models, cfg, store, attention_store=attention_store)


def mid_preset(tmp: Path) -> str:
    "A mid-sized random SD UNet (3 levels, 64-256 channels, 2 layers per block) with the tiny VAE, text and image encoders."
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from safetensors.torch import save_file
    tiny = Models("tiny", device="cpu").t2i
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(64, 128, 256), layers_per_block=2, sample_size=32, cross_attention_dim=32,
                                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                                attention_head_dim=8, norm_num_groups=32)
    pipe = StableDiffusionPipeline(vae=tiny.vae, text_encoder=tiny.text_encoder, tokenizer=tiny.tokenizer, unet=unet, scheduler=tiny.scheduler,
                                   safety_checker=None, feature_extractor=tiny.feature_extractor, image_encoder=None, requires_safety_checker=False)
    pipe.save_pretrained(tmp / "sd", safe_serialization=True)
    dim = Models("tiny").image_encoder[0].config.projection_dim
    w = tiny_ip_adapter_state_dict(unet, dim, seed=1)
    (tmp / "ip").mkdir(exist_ok=True)
    save_file({f"{k}.{n}": t.contiguous() for k, d in w.items() for n, t in d.items()}, str(tmp / "ip" / "ip.safetensors"))
    register_preset(Preset("bench-mid", t2i=str(tmp / "sd"), t2i_kind="sd", image_encoder="tiny:image_encoder",
                           ip_adapter=ModelRef(str(tmp / "ip"), weight_name="ip.safetensors"), i2v={}, llm="tiny:llm",
                           defaults=dict(width=64, height=64, steps=3, guidance_scale=5.0, identity_scale=0.6, prev_scale=0.4)))
    n = sum(p.numel() for p in unet.parameters())
    return "bench-mid", n


def bench(name, preset, n_shots, repeats, tmp):
    models = Models(preset, device="cpu", dtype="float32")
    cfg = KeyframeConfig.from_preset(models.preset)
    script = make_script(n_shots)
    weights = models.ip_adapter_weights
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None
    times = {"diffusers": [], "vgot": [], "vgot-shm": []}; cpu = {k: [] for k in times}
    def fresh(root=tmp):
        st = RunStore(Path(tempfile.mkdtemp(dir=root)) / "run"); write_identities(st, (cfg.width, cfg.height)); return st
    run_diffusers(script, models, cfg, weights, fresh()); run_vgot(script, models, cfg, fresh())      # warm-up
    for _ in range(repeats):
        for side in times:
            if side == "vgot-shm" and shm is None: continue
            st = fresh(shm if side == "vgot-shm" else tmp); t, c = time.perf_counter(), time.process_time()
            (run_diffusers(script, models, cfg, weights, st) if side == "diffusers" else run_vgot(script, models, cfg, st))
            times[side].append(time.perf_counter() - t); cpu[side].append(time.process_time() - c)
            if side == "vgot-shm": shutil.rmtree(st.root.parent, ignore_errors=True)
    d, v = median(times["diffusers"]), median(times["vgot"])
    cd, cv = median(cpu["diffusers"]), median(cpu["vgot"])
    vs = median(times["vgot-shm"]) if times["vgot-shm"] else float("nan")
    # attention capture: every decoupled layer, every step, maps at most 16x16 (median of `repeats` after a warm-up)
    run_vgot(script, models, cfg, fresh(), attention_store=AttentionStore(res=16, rows=slice(1, 2)))
    tcs = []
    for _ in range(repeats):
        att = AttentionStore(res=16, rows=slice(1, 2))
        st = fresh(); t = time.perf_counter(); run_vgot(script, models, cfg, st, attention_store=att); tcs.append(time.perf_counter() - t)
    tc = median(tcs)
    bound = AttentionStore(res=16, rows=slice(1, 2), max_bytes=att.nbytes // 4)
    run_vgot(script, models, cfg, fresh(), attention_store=bound)
    return dict(name=name, shots=n_shots, size=f"{cfg.width}x{cfg.height}", steps=cfg.steps, diffusers=d, vgot=v, ratio=v / d, vgot_shm=vs, cpu_ratio=cv / cd,
                capture=tc / v, maps=sum(len(m) for m in att.runs.values()), stored=att.nbytes, transient=att.peak_transient_bytes,
                bounded=(bound.nbytes, bound.max_bytes, bound.dropped))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps timings stable on a shared machine)")
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mid, n_params = mid_preset(tmp)
        rows = [bench("tiny", "tiny", a.shots, a.repeats, tmp), bench(f"mid ({n_params / 1e6:.1f} M UNet)", mid, a.shots, a.repeats, tmp)]
    print(f"\nkeyframes: vgot stage vs diffusers IP-Adapter pipeline (CPU, {a.threads} thread(s), median of {a.repeats} after a warm-up, {a.shots} shots)")
    print("wall: elapsed seconds; cpu: this process's CPU seconds (steadier when other processes share the cores);")
    print("vgot writes PNG + latent + JSON + manifest per keyframe, each fsynced; 'tmpfs' puts its run folder in /dev/shm")
    print(f"{'model':22s} {'size':>7s} {'steps':>5s} {'diffusers s':>11s} {'vgot s':>8s} {'wall ratio':>10s} {'cpu ratio':>9s} "
          f"{'tmpfs ratio':>11s} {'target 1.05':>11s}")
    for r in rows:
        print(f"{r['name']:22s} {r['size']:>7s} {r['steps']:>5d} {r['diffusers']:11.3f} {r['vgot']:8.3f} {r['ratio']:10.3f} "
              f"{r['cpu_ratio']:9.3f} {r['vgot_shm'] / r['diffusers']:11.3f} {'ok' if r['ratio'] <= 1.05 else 'wall missed':>11s}")
    print(f"\nattention capture (every decoupled layer and step, text + 2 branches, maps <= 16x16, float16, conditional half)")
    print(f"{'model':22s} {'maps':>5s} {'stored KiB':>10s} {'transient KiB':>13s} {'time x':>7s} {'bounded run: stored/bound KiB, dropped':>40s}")
    for r in rows:
        b = r["bounded"]
        print(f"{r['name']:22s} {r['maps']:5d} {r['stored'] / 1024:10.1f} {r['transient'] / 1024:13.1f} {r['capture']:7.2f} "
              f"{f'{b[0] / 1024:.1f}/{b[1] / 1024:.1f}, {b[2]}':>40s}")
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.1f} s")
    if not a.no_write:
        body = "\n".join([
            f"{machine()}. {a.shots} shots per run; each side {a.repeats} times, alternating, after a warm-up of both: "
            "medians. diffusers: its own IP-Adapter pipeline (two adapters, per-shot scales); vgot: `generate_keyframes` "
            "(decoupled attention, the same weights), which also writes PNG + latent + JSON + manifest per keyframe, "
            "fsynced; tmpfs: vgot with its run folder in /dev/shm. cpu: this process's CPU seconds.",
            "",
            md_table(["model", "size", "steps", "diffusers s", "vgot s", "wall ratio", "cpu ratio", "tmpfs ratio", "target 1.05"],
                     [[r["name"], r["size"], r["steps"], f"{r['diffusers']:.3f}", f"{r['vgot']:.3f}", f"{r['ratio']:.3f}",
                       f"{r['cpu_ratio']:.3f}", f"{r['vgot_shm'] / r['diffusers']:.3f}", "ok" if r["ratio"] <= 1.05 else "missed"]
                      for r in rows]),
            "",
            "Attention capture (every decoupled layer and step, text + 2 branches, maps <= 16x16, float16, conditional "
            "half); time x: vgot with capture / without (medians).",
            "",
            md_table(["model", "maps", "stored KiB", "transient KiB", "time x", "bounded run: stored / bound KiB, dropped"],
                     [[r["name"], r["maps"], f"{r['stored'] / 1024:.1f}", f"{r['transient'] / 1024:.1f}", f"{r['capture']:.2f}",
                       f"{r['bounded'][0] / 1024:.1f} / {r['bounded'][1] / 1024:.1f}, {r['bounded'][2]}"] for r in rows]),
            "",
            f"Whole bench {total:.0f} s.",
        ])
        print(f"wrote its section of {write_section('Keyframes: vgot vs diffusers IP-Adapter', body, 'bench/bench_keyframes.py')}")
    return 0                                            # a benchmark reports; it does not fail the build


if __name__ == "__main__": sys.exit(main())
