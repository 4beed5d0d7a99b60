"The explorers of vgot.viz driven headless on a tiny run: controls set as a person would, views checked against what they should show."
import hashlib
from pathlib import Path
import numpy as np
import pytest
from vgot.core import Story, Script, VgotError
from vgot.media import load_image, read_video

STORY = Story("Ada walks to the lighthouse at dawn.\n\nAda climbs the stairs of the lighthouse.\n\nAda lights the lamp at night.", "The lamp")

@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_models):
    from vgot.pipeline import VGoT
    from vgot.run_config import RunConfig
    d = tmp_path_factory.mktemp("viz") / "lamp"
    VGoT(RunConfig(preset="tiny", transitions={"mode": "gpr"}), tiny_models).generate(STORY, d, quiet=True)
    return d

def _sha(p: Path) -> str: return hashlib.sha256(p.read_bytes()).hexdigest()

def test_prompt_edit_redoes_the_shot_and_what_depends_on_it_only(run, tiny_models, tmp_path):
    import shutil
    from vgot.viz import ShotEditor
    d = tmp_path / "lamp"; shutil.copytree(run, d)
    ed = ShotEditor(d, tiny_models)
    assert ed.regenerate()["redone"] == []                               # nothing edited: nothing redone
    before = {p.relative_to(d).as_posix(): _sha(p) for p in d.rglob("*") if p.is_file()}
    w = ed.widget(); c = ed.controls
    c["cards"][1].value = True
    c["prompt"].value = "Ada climbs a spiral staircase, seen from below"
    c["regenerate"].click()
    # keyframe 2 is conditioned on keyframe 1, so it and its clip are redone too; nothing of shot 0 is
    assert ed.last["redone"] == ["final", "keyframe/001", "keyframe/002", "shot/001", "shot/002", "storyboard",
                                 "transition/000-001", "transition/001-002"], ed.last
    after = {p.relative_to(d).as_posix(): _sha(p) for p in d.rglob("*") if p.is_file()}
    for f in ("keyframes/000.png", "keyframes/000.latent.safetensors", "shots/000.mp4", "shots/000.latents.safetensors"):
        assert after[f] == before[f], f
    for f in ("keyframes/001.png", "shots/001.mp4", "transitions/000-001.mp4", "transitions/001-002.mp4", "final.mp4"):
        assert after[f] != before[f], f
    assert Script.load(d / "script.json").shots[1].prompt == "Ada climbs a spiral staircase, seen from below"
    assert c["images"][1].value == (d / "keyframes/001.png").read_bytes()   # the card shows the new keyframe
    assert c["video"].value == (d / "shots/001.mp4").read_bytes()
    # the edit survives a plain resume of the run folder
    from vgot.pipeline import VGoT
    from vgot.run_config import RunConfig
    VGoT(RunConfig(preset="tiny", transitions={"mode": "gpr"}), tiny_models).generate(STORY, d, quiet=True)
    assert Script.load(d / "script.json").shots[1].prompt == "Ada climbs a spiral staircase, seen from below"
    assert _sha(d / "shots/001.mp4") == after["shots/001.mp4"]

def test_editor_refuses_bad_edits(run, tiny_models):
    from vgot.viz import ShotEditor
    ed = ShotEditor(run, tiny_models)
    with pytest.raises(VgotError, match="zoom"): ed.edit(0, motion={"pan": 0.0, "tilt": 0.0, "zoom": 9.0})
    with pytest.raises(VgotError, match="outside"): ed.edit(7, prompt="x")
    with pytest.raises(VgotError, match="no script.json"): ShotEditor(run / "keyframes")

def test_attention_widget_follows_its_controls(run, tiny_models, tmp_path):
    import shutil
    from vgot.viz import AttentionExplorer, captures_rel
    d = tmp_path / "lamp"; shutil.copytree(run, d)
    AttentionExplorer.from_run(d, 2, models=tiny_models)
    ex = AttentionExplorer.from_run(d, 2)                               # from the saved captures
    assert np.array_equal(ex.image, np.asarray(load_image(d / "keyframes/002.png")))
    w = ex.widget(); c = ex.controls
    seen = []
    for branch in ex.branches:
        c["branch"].value = branch
        for layer in [None] + ex.layers[:2]:
            c["layer"].value = "all" if layer is None else layer
            for token in range(min(3, ex.n_tokens(branch))):
                c["token"].value = token
                np.testing.assert_allclose(ex.shown, ex.map(branch, layer, None, token))
                seen.append(c["image"].value)
    assert len(set(seen)) > len(seen) // 2                               # the view changes with the controls
    c["step"].value = ex.steps[-1]
    np.testing.assert_allclose(ex.shown, ex.map(c["branch"].value, ex.state["layer"], ex.steps[-1], c["token"].value))
    assert ex.state["step"] == ex.steps[-1] and c["step"].label == str(ex.steps[-1])

def test_gp_viewer_from_run_slider_shows_the_transition_frames(run):
    from vgot.viz import GPPathViewer
    gv = GPPathViewer.from_run(run, 1)
    frames = read_video(run / "transitions/001-002.mp4")[0]
    w = gv.widget(); c = gv.controls
    for i in range(gv.n):
        c["frame"].value = i
        assert np.array_equal(gv.shown, frames[i])
    assert gv.xy["mean"].shape == (gv.n, 2) and (gv.std > 0).all()
    with pytest.raises(VgotError, match="needs shots 2 and 3"): GPPathViewer.from_run(run, 2)

# --- the explorers' logic, without a widget: what each selection shows ------------------------------------------------

def test_attention_maps_selection_without_a_widget(run, tiny_models, tmp_path):
    "AttentionMaps (no ipywidgets): a selection gives the map of that branch/layer/step/token, its name, the token count."
    import shutil
    from vgot.viz import AttentionExplorer, AttentionMaps, captures_rel, load_captures
    d = tmp_path / "lamp"; shutil.copytree(run, d)
    AttentionExplorer.from_run(d, 2, models=tiny_models)                # captures shot 2's maps into the run folder
    store, tokens, scales = load_captures(d / captures_rel(2))
    am = AttentionMaps(store, tokens=tokens, scales=scales)
    assert not hasattr(am, "widget")                                    # the logic holds no controls
    for branch in am.branches:
        n = am.n_tokens(branch)
        sel = am.selection(branch, am.layers[0], am.steps[0], token=n + 5)   # past the end: clamped to the last token
        assert (sel["token"], sel["n_tokens"]) == (n - 1, n)
        np.testing.assert_allclose(sel["map"], am.map(branch, am.layers[0], am.steps[0], n - 1))
        assert sel["label"] == am.token_name(branch, n - 1)
    np.testing.assert_allclose(am.selection("text")["map"], am.map("text"))   # all layers, all steps
    assert [l for _, l in am.layer_choices()] == am.layers
    with pytest.raises(VgotError, match="no attention maps for branch 'nope'"): am.selection("nope")

def test_gp_path_projection_and_run_gp_path_without_a_widget(run):
    "run_gp_path reads a run's transition; GPPathProjection puts it on the principal components (no ipywidgets)."
    from vgot.viz import GPPathProjection, run_gp_path
    kw = run_gp_path(run, 0)
    frames = read_video(run / "transitions/000-001.mp4")[0]
    assert kw["title"].startswith("transition 000-001") and np.array_equal(kw["frames"], frames)
    p = GPPathProjection(**kw)
    assert p.n == len(frames) and p.xy["mean"].shape == (p.n, 2) and p.std.shape == (p.n,)
    np.testing.assert_allclose(p.project(kw["path"].mean), p.xy["mean"])
    for i in range(p.n): assert np.array_equal(p.frame_image(i), frames[i])
    with pytest.raises(VgotError, match="needs shots 2 and 3"): run_gp_path(run, 2)

def test_storyboard_and_shot_edits_without_a_widget(run, tmp_path):
    "Storyboard (no ipywidgets): cards, selection, and the edit that shot_edits makes of the editor's controls."
    import shutil
    from vgot.core import CameraMotion
    from vgot.viz import Storyboard, shot_edits, timeline_figure
    d = tmp_path / "lamp"; shutil.copytree(run, d)
    sb = Storyboard(d)
    assert sb.select(1) == (d / "shots/001.mp4").read_bytes() and sb.selected == 1
    s = sb.script.shots[1]
    assert shot_edits(s, s.prompt, s.motion.pan, s.motion.tilt, s.motion.zoom) == {}
    kw = shot_edits(s, s.prompt, 0.25, s.motion.tilt, s.motion.zoom)
    assert kw == {"motion": CameraMotion(0.25, s.motion.tilt, s.motion.zoom)}
    sb.edit(1, **kw)
    assert Script.load(d / "script.json").shots[1].motion.pan == 0.25 and sb.script.shots[1].motion.pan == 0.25
    assert shot_edits(s, "a new prompt", s.motion.pan, s.motion.tilt, s.motion.zoom) == {"prompt": "a new prompt"}
    import matplotlib.pyplot as plt
    fig = timeline_figure(sb, selected=1)
    assert len(fig.axes) == 1 and fig.axes[0].get_title().startswith(f"{sb.script.title}: 3 shots"); plt.close(fig)
