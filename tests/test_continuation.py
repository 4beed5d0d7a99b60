"Shots that do not cut (issue 32): chained in latent space on the transformer backends, no transition into them, resumable."
from dataclasses import replace

import numpy as np
import pytest
import torch

import vgot.shots as shots_mod
from test_shots import make_keyframe, make_shot
from vgot.continuation import seam_ratio
from vgot.core import CameraMotion, RunStore, Script, VgotError
from vgot.media import load_tensors, read_video
from vgot.shots import ShotConfig, generate_shots

N = 4  # shot 0 cuts in, shots 1-3 run on from it


def chain_script(n=N):
    return Script(title="t", shots=[replace(make_shot(i, motion=CameraMotion()), cut=i == 0) for i in range(n)])


def run_chain(models, root, backend="wan", **kw):
    st = RunStore(root)
    kfs = [make_keyframe(st, i, seed=i) for i in range(N)]
    cfg = ShotConfig.from_preset("tiny", backend=backend, camera="none", continuation="latent", **kw)
    return st, generate_shots(chain_script(), kfs, models, cfg, st, progress=False)


@pytest.mark.parametrize("backend,native", [("wan", 9), ("ltx", 17)])
def test_a_continued_shot_starts_on_the_exact_latents_of_the_one_before(tiny_models, tmp_path, monkeypatch, backend, native):
    seen = []
    real = shots_mod.run_chunk

    def spy(*a, **kw):
        out = real(*a, **kw)
        seen.append((kw.get("context"), out))
        return out

    monkeypatch.setattr(shots_mod, "run_chunk", spy)
    st, clips = run_chain(tiny_models, tmp_path / "run", backend, native_frames=native)
    assert [c.shot for c in clips] == list(range(N))
    lat = [load_tensors(st.path(c.latents)) for c in clips]
    calls = [s for s in seen if s[0] is not None]
    assert len(calls) >= N - 1
    for j in range(1, N):  # the first call of shot j: [single start, the last latent frame of shot j - 1]
        ctx, out = next(s for s in seen if s[0] is not None and torch.equal(s[0][1:], lat[j - 1]["latents"][-1:].float()))
        assert torch.equal(ctx[:1], lat[j - 1]["tail_start"])  # the single-frame start the shot before kept for it
        torch.testing.assert_close(out[: len(ctx)], ctx, atol=1e-5, rtol=0)  # held clean: no decode, no re-encode
    for c, l in zip(clips[1:], lat[1:]):  # one anchor for the whole chain
        torch.testing.assert_close(l["anchor_mean"], lat[0]["anchor_mean"])


def test_chain_frames_counts_and_no_seam_in_the_decoder(tiny_models, tmp_path):
    st, clips = run_chain(tiny_models, tmp_path / "run")
    frames = [read_video(st.path(c.video))[0].astype(np.float64) for c in clips]
    assert [len(f) for f in frames] == [8] * N  # 2 s at 4 fps each
    bounds = list(np.cumsum([len(f) for f in frames[:-1]]))
    ratio = seam_ratio(np.concatenate(frames), bounds)
    assert ratio <= 1.0, f"a shot boundary steps {ratio:.2f} x the largest step inside the shots"


def test_resume_after_a_failure_in_the_middle_of_a_chain_gives_the_same_video(tiny_models, tmp_path, monkeypatch):
    st_a, clips_a = run_chain(tiny_models, tmp_path / "a")
    real, calls = shots_mod.run_chunk, {"n": 0}

    def dies_in_shot_2(pipe, backend, image, prompt, cam, config, generator, context=None):
        calls["n"] += 1
        if calls["n"] == 5:  # shot 0 (one window), shot 1 (two: 1 + 1 condition frames leave one new per call), shot 2's second
            raise RuntimeError("killed")
        return real(pipe, backend, image, prompt, cam, config, generator, context)

    monkeypatch.setattr(shots_mod, "run_chunk", dies_in_shot_2)
    with pytest.raises(RuntimeError, match="killed"):
        run_chain(tiny_models, tmp_path / "b")
    st_b = RunStore(tmp_path / "b")
    assert st_b.is_done("shot/001") and not st_b.is_done("shot/002")
    monkeypatch.setattr(shots_mod, "run_chunk", real)
    st_b, clips_b = run_chain(tiny_models, tmp_path / "b")
    for a, b in zip(clips_a, clips_b):
        assert torch.equal(load_tensors(st_a.path(a.latents))["latents"], load_tensors(st_b.path(b.latents))["latents"])
        assert st_a.path(a.video).read_bytes() == st_b.path(b.video).read_bytes()


def test_a_continued_shot_needs_the_shot_before(tiny_models, tmp_path):
    st = RunStore(tmp_path / "run")
    kf = make_keyframe(st, 1)
    cfg = ShotConfig.from_preset("tiny", backend="wan", continuation="latent")
    with pytest.raises(VgotError, match="shot 1: continues shot 0 without a cut .* has no clip yet"):
        shots_mod.generate_shot(kf, chain_script().shots[1], tiny_models, cfg, st)


def test_a_changed_shot_before_redoes_the_shot_that_continues_it(tiny_models, tmp_path):
    st, clips = run_chain(tiny_models, tmp_path / "run")
    h3 = st.manifest["artifacts"]["shot/003"]["inputs"]
    script = chain_script()
    script.shots[2] = replace(script.shots[2], relation="runs down the stairs")  # shot 2 changes: shot 3 runs on from it
    kfs = [make_keyframe(st, i, seed=i) for i in range(N)]
    cfg = ShotConfig.from_preset("tiny", backend="wan", camera="none", continuation="latent")
    generate_shots(script, kfs, tiny_models, cfg, st, progress=False)
    assert st.manifest["artifacts"]["shot/003"]["inputs"] != h3


def test_no_transition_leads_into_a_shot_that_does_not_cut(tiny_models, tmp_path):
    from vgot.core import Shot, ShotClip
    from vgot.media import save_tensors, write_video
    from vgot.transitions import TransitionConfig, generate_transitions

    store = RunStore(tmp_path / "run")
    shots = [Shot(index=i, segment="s", duration=2.0, character="c", background="b", relation="r", camera="w", cut=i != 1)
             for i in range(3)]  # fmt: skip
    clips = []
    for i in range(3):
        vid_rel, lat_rel = store.shot_rel(i)
        write_video(store.path(vid_rel), np.full((5, 32, 32, 3), 80 * i, np.uint8), 4)
        save_tensors(store.path(lat_rel), {"latents": torch.full((5, 4, 16, 16), float(i))})
        clips.append(ShotClip(shot=i, video=vid_rel, latents=lat_rel, n_frames=5, fps=4.0, seed=0))
    trs = generate_transitions(Script("t", shots), clips, tiny_models, TransitionConfig(mode="crossfade", frames=3), store, progress=False)
    assert [(t.src, t.dst) for t in trs] == [(1, 2)]  # shot 1 runs on from shot 0: nothing between them
    assert not (store.root / "transitions" / "000-001.mp4").exists()
