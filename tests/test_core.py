"Foundation tests: artifact JSON round trips, field validation, atomic writes under SIGKILL, the run store."
import json, os, signal, subprocess, sys, time, textwrap
from pathlib import Path
import pytest

from vgot.core import (CameraMotion, Character, Keyframe, RunStore, Script, Shot, ShotClip, Story, Transition, ValidationError,
                       VgotError, atomic_write_bytes, hash_inputs)

def shot(i=0, **kw):
    d = dict(index=i, segment="Ada climbs the stairs.", duration=3.0, character="Ada", background="a lighthouse",
             relation="Ada climbs", camera="low angle", motion=CameraMotion(0.1, 0.2, 1.2), hdr="warm",
             characters=["Ada"], identity_refs={"Ada": "ada.png"})
    d.update(kw); return Shot(**d)

ARTIFACTS = [
    CameraMotion(0.5, -0.25, 1.5),
    Character("Ada", "keeper", "ada.png"),
    Story("Once upon a time.", "T", [Character("Ada", "keeper")]),
    shot(),
    Script("T", [shot(0), shot(1)], [Character("Ada")], "rules"),
    Keyframe(0, "keyframes/000.png", "keyframes/000.latent.safetensors", 1, 64, 64),
    ShotClip(0, "shots/000.mp4", "shots/000.latents.safetensors", 12, 4.0, 2, "svd", "warp"),
    Transition(0, 1, "gpr+diffusion", 8, "transitions/000-001.mp4", "transitions/000-001.latents.safetensors"),
]

@pytest.mark.parametrize("a", ARTIFACTS, ids=lambda a: type(a).__name__)
def test_round_trip(a):
    b = type(a).from_json(a.to_json())
    assert b == a and b.to_dict() == a.to_dict()

# (artifact, field path to break, bad value, text the message must contain)
INVALID = [
    (CameraMotion(), "pan", 1.5, "pan = 1.5 is outside [-1.0, 1.0]"),
    (CameraMotion(), "tilt", "up", "tilt = 'up' is not a number"),
    (CameraMotion(), "zoom", 7.0, "zoom = 7.0 is outside [0.5, 2.0]"),
    (Character("A"), "name", "", "name = '' is empty"),
    (Character("A"), "identity_image", "../../etc/passwd", "identity_image = '../../etc/passwd'"),
    (Character("A"), "identity_image", "/etc/passwd", "identity_image = '/etc/passwd' is an absolute path"),
    (Story("x"), "text", "   ", "text = '   ' is empty"),
    (Story("x"), "cast", [{"name": "A"}, {"name": "A"}], "cast = ['A'] has duplicate names"),
    (shot(), "duration", 9, "duration = 9 is outside [2.0, 5.0]"),
    (shot(), "duration", 1.0, "duration = 1.0 is outside [2.0, 5.0]"),
    (shot(), "index", -1, "index = -1 is negative"),
    (shot(), "background", "", "background = '' is empty"),
    (shot(), "character", 3, "character = 3 is not a str"),
    (shot(), "motion", {"pan": 0, "tilt": 0, "zoom": 0.1}, "motion.zoom = 0.1 is outside [0.5, 2.0]"),
    (shot(), "identity_refs", {"Ada": "../x.png"}, "identity_refs.Ada = '../x.png'"),
    (Script("T", [shot()]), "shots", [], "shots = [] is empty"),
    (Script("T", [shot()]), "title", "", "title = '' is empty"),
    (Keyframe(0, "a.png", "a.st", 1, 64, 64), "width", 4, "width = 4 is outside [8, 8192]"),
    (Keyframe(0, "a.png", "a.st", 1, 64, 64), "image", "/abs.png", "image = '/abs.png'"),
    (ShotClip(0, "a.mp4", "a.st", 4, 4.0, 1), "fps", 0, "fps = 0 is outside [1, 240]"),
    (ShotClip(0, "a.mp4", "a.st", 4, 4.0, 1), "camera", "dolly", "camera = 'dolly' is not one of"),
    (Transition(0, 1, "gpr", 4), "mode", "wipe", "mode = 'wipe' is not one of"),
    (Transition(0, 1, "gpr", 4), "dst", 3, "dst = 3 should be src + 1 = 1"),
]

@pytest.mark.parametrize("a,field,value,msg", INVALID, ids=lambda x: str(x)[:30] if isinstance(x, str) else None)
def test_invalid_field_is_named(a, field, value, msg):
    d = a.to_dict(); d[field] = value
    with pytest.raises(ValidationError) as e: type(a).from_dict(d)
    assert msg in str(e.value)

def test_unknown_and_missing_fields_are_named():
    d = shot().to_dict(); d["colour"] = "red"
    with pytest.raises(ValidationError, match="colour = 'red' is not a field of Shot"): Shot.from_dict(d)
    d = shot().to_dict(); del d["background"]
    with pytest.raises(ValidationError, match="background = None is missing"): Shot.from_dict(d)

def test_shots_out_of_order():
    with pytest.raises(ValidationError, match=r"shots\[1\].index = 5 should be 1"): Script("T", [shot(0), shot(5)]).validate()

def test_load_names_file(tmp_path):
    p = tmp_path / "script.json"; d = Script("T", [shot()]).to_dict(); d["shots"][0]["motion"]["zoom"] = 7.0
    p.write_text(json.dumps(d))
    with pytest.raises(VgotError, match=r"script.json: shots\[0\].motion.zoom = 7.0 is outside \[0.5, 2.0\]"): Script.load(p)
    p.write_text("{not json")
    with pytest.raises(VgotError, match="script.json: not valid JSON .*; fix or remove the file"): Script.load(p)

WRITER = textwrap.dedent("""
    import sys, os
    from vgot.core import atomic_write_bytes
    path, n = sys.argv[1], int(sys.argv[2])
    i = 0
    while True:
        i += 1
        atomic_write_bytes(path, bytes([i % 251]) * n)   # every complete version is n identical bytes
""")

def test_sigkill_never_leaves_truncated_artifact(tmp_path):
    "Kill a writer mid-write many times: the final name always holds a whole file, never a truncated one."
    target, n = tmp_path / "artifact.bin", 4_000_000
    for trial in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(n)])
        time.sleep(0.3 + 0.17 * trial)
        proc.send_signal(signal.SIGKILL); proc.wait()
        assert target.exists(), "the writer should have completed at least one write"
        data = target.read_bytes()
        assert len(data) == n and len(set(data)) == 1, f"trial {trial}: truncated or mixed artifact"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "artifact.bin"]
    assert all(name.startswith(".artifact.bin.") for name in leftovers)   # only hidden temporaries, never the final name

def test_run_store_status_and_resume(tmp_path):
    st = RunStore(tmp_path / "run")
    st.set_config({"steps": 2}, preset="tiny", seeds={"base": 1})
    h = hash_inputs({"a": 1})
    assert st.status("keyframe/0", h) == "missing"
    kf_png, _ = st.keyframe_rel(0)
    atomic_write_bytes(st.path(kf_png), b"png")
    st.record("keyframe/0", h, [kf_png], stage="keyframes")
    assert RunStore(tmp_path / "run").status("keyframe/0", h) == "done"
    assert st.status("keyframe/0", hash_inputs({"a": 2})) == "stale"
    m = json.loads((tmp_path / "run" / "run.json").read_text())
    assert m["preset"] == "tiny" and m["versions"]["torch"] and m["config_hash"] == hash_inputs({"steps": 2})
    (tmp_path / "run" / "run.json").write_text("{")
    with pytest.raises(VgotError, match="run.json: not valid JSON .*; fix or remove the file"): RunStore(tmp_path / "run")

def test_run_store_unwritable(tmp_path):
    if os.geteuid() == 0: pytest.skip("root ignores permissions")
    ro = tmp_path / "ro"; ro.mkdir(); ro.chmod(0o500)
    with pytest.raises(VgotError, match="cannot create run folder"): RunStore(ro / "run")


def test_save_tensors_writes_the_same_bytes_every_time(tmp_path):
    "safetensors writes its metadata map in a random order; vgot's files are byte-identical for the same content."
    import torch
    from safetensors import safe_open
    from vgot.core import file_sha256
    from vgot.media import save_tensors, load_tensors
    meta = {"shot": 3, "seed": 7, "frames": 16, "fps": 8.0}
    sums = set()
    for i in range(12):
        save_tensors(tmp_path / f"{i}.safetensors", {"latents": torch.arange(6.0).reshape(2, 3), "b": torch.ones(1)}, meta)
        sums.add(file_sha256(tmp_path / f"{i}.safetensors"))
    assert len(sums) == 1
    assert torch.equal(load_tensors(tmp_path / "0.safetensors")["latents"], torch.arange(6.0).reshape(2, 3))
    with safe_open(str(tmp_path / "0.safetensors"), "pt") as f: assert f.metadata() == {k: str(v) for k, v in meta.items()}


def test_a_killed_runs_ffmpeg_is_stopped_before_its_temporary_is_removed(tmp_path):
    "A run killed while encoding leaves its ffmpeg finishing a temporary: the resume's clean-up kills it, then removes the file."
    import subprocess, time
    import imageio_ffmpeg
    from vgot.core import remove_orphan_temporaries
    shots = tmp_path / "run" / "shots"; shots.mkdir(parents=True)
    tmp = shots / ".000.mp4.abcd1234.tmp.mp4"
    ff = subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                           "-s", "8x8", "-r", "4", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp)],
                          stdin=subprocess.PIPE, start_new_session=True)  # its own session: a kill of vgot spares it
    ff.stdin.write(bytes(8 * 8 * 3) * 64); ff.stdin.flush()  # frames, and the pipe left open: still writing
    for _ in range(200):
        if tmp.exists(): break
        time.sleep(0.05)
    assert tmp.exists() and ff.poll() is None
    assert remove_orphan_temporaries(tmp_path / "run") == ["shots/.000.mp4.abcd1234.tmp.mp4"]
    assert ff.wait(timeout=5) != 0  # killed, not finished
    time.sleep(0.2)
    assert not tmp.exists() and list(shots.iterdir()) == []
