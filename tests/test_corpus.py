"""A corpus of bad input through the CLI: every case exits 2 with one `vgot: error:` line naming the setting or file,
no traceback, and nothing written (the run folder is not even created) or read outside the run's folders."""
import json, math, os, struct, typing, zlib
from dataclasses import fields
from pathlib import Path

import pytest

from conftest import ROOT
from vgot.cli import main
from vgot.keyframes import KeyframeConfig
from vgot.planners import ScriptConfig
from vgot.shots import ShotConfig
from vgot.transitions import TransitionConfig

STORY = ROOT / "data" / "stories" / "fox_and_crow.txt"
STORIES = ROOT / "data" / "stories"
SECTIONS = {"script": ScriptConfig, "keyframes": KeyframeConfig, "shots": ShotConfig, "transitions": TransitionConfig}
NOT_SETTABLE = {"seed"}    # the run's seed is set at the top level (--seed), not per stage


def _bad_values(cls, f):
    "JSON texts a user could pass that this setting must refuse."
    tp = typing.get_type_hints(cls)[f.name]
    optional = typing.get_origin(tp) is typing.Union
    if optional: tp = next(a for a in typing.get_args(tp) if a is not type(None))
    lo, hi, choices = f.metadata.get("lo"), f.metadata.get("hi"), f.metadata.get("choices")
    if tp is float: vals = ["NaN", "Infinity", '"fast"', "true", "[1]"] + (["-1e308"] if lo is not None else []) + (["1e308"] if hi is not None else [])
    elif tp is int: vals = ["1.5", '"x"', "NaN", "true"] + (["-99999"] if lo is not None else []) + (["99999999"] if hi is not None else [])
    elif tp is bool: vals = ['"yes"', "2"]
    elif tp is str: vals = ["3", "{}"] + (['"nope"'] if choices else [])
    else: vals = []
    return vals


CASES = [(f"{s}.{f.name}={v}", f"{s} config: {f.name} = ") for s, cls in SECTIONS.items() for f in fields(cls)
         if f.name not in NOT_SETTABLE for v in _bad_values(cls, f)]
CASES += [("keyframes.portrait_prompt={0}", "portrait_prompt"), ("keyframes.portrait_prompt={nme}", "portrait_prompt"),
          ("shots.camera=embedding", "needs camera_adapter"),
          ("shots.min_guidance_scale=5", "min_guidance_scale = 5 is above max_guidance_scale"),
          ("transitions.frames=0", "leaves no room"), ("shots.width=33", "multiple of 8"),
          ("fps=NaN", "fps = nan"), ("fps=-1", "fps = -1"), ("fps=1e9", "fps = 1000000000"), ('fps="x"', "fps = 'x'"),
          ("seed=-1", "seed = -1"), ('seed="x"', "seed = 'x'"), ("seed=1.5", "seed = 1.5"), ("device=foo", "device 'foo'"),
          ("device=gpu", "device 'gpu'"), ("device=cuda:x", "device 'cuda:x'"), ("dtype=float8", "dtype 'float8'"),
          ("preset=huge", "unknown preset 'huge'"), ("planner=oracle", "planner = 'oracle'"), ("evaluate=3", "evaluate = 3"),
          ("shots=3", "--set shots: unknown setting"), ("nosuch.key=1", "unknown section 'nosuch'"), ("shots.camra=warp", "no setting 'camra'"),
          ("colour=red", "unknown setting"), ("novalue", "expected key=value"),
          # hostile values: wrong types, nesting, huge numbers, templates that reach into objects or allocate
          ("preset={}", "preset = {}: must be a name"), ("dtype=[1]", "dtype = [1]: must be a name"),
          ('device={"a": 1}', "device = {'a': 1}: must be a name"), ("planner=[]", "planner = []: must be a name"),
          ("fps=1e-300", "fps = 1e-300: must be a number in [1, 240]"), ("fps=0.5", "fps = 0.5"),
          ("shots.width=" + "[" * 50_000 + "]" * 50_000, "--set shots.width: the value nests 50,000 levels deep; at most 32"),
          ("seed=" + "7" * 5000, "--set seed: a number has more than 4,300 digits"),
          ("seed=99999999999999999999999", "seed = 99999999999999999999999: must be a whole number in [0, 9223372036854775807]"),
          ('shots={"camera": "warp"}', "--set shots: unknown setting"),
          ('ray_gpus={"i2v": [[1]]}', "ray_gpus: a value nests more than 2 levels deep"),
          ("keyframes.portrait_prompt={name.__class__.__mro__}", "uses {name.__class__.__mro__}; only {name}, {description} may appear"),
          ("keyframes.portrait_prompt={name:>3000000000}", "uses {name:>3000000000}; only {name}, {description}"),
          ("keyframes.portrait_prompt={name[0]}", "uses {name[0]}"), ("keyframes.portrait_prompt={name!r}", "uses {name!r}"),
          ("keyframes.portrait_prompt=portrait of {name", "portrait_prompt = 'portrait of {name' is not a template")]
assert len(CASES) >= 118, len(CASES)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    "A working folder the command must leave as it found it."
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    return tmp_path


def _one_line(capsys, argv, *words):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2, (argv, rc, out[-300:], err[-800:])
    assert "Traceback" not in err and err.startswith("vgot: error: ") and err.count("\n") == 1, err
    for w in words:
        if w: assert w in err, (w, err)
    return err


@pytest.mark.parametrize("setting, words", CASES, ids=[c[0][:60] for c in CASES])
def test_bad_setting(sandbox, capsys, setting, words):
    _one_line(capsys, ["run", STORY, "--run-dir", "run", "--quiet", "--set", setting], words)
    assert sorted(p.name for p in sandbox.iterdir()) == ["keep.txt"]        # not even the run folder


def _png_claiming(path: Path, w: int, h: int):
    from PIL import Image
    Image.new("RGB", (8, 8)).save(path)
    png = bytearray(path.read_bytes())
    png[16:24] = struct.pack(">II", w, h); png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    path.write_bytes(bytes(png))


def _files(sandbox):
    d = sandbox / "inputs"; d.mkdir()
    (d / "empty.txt").write_text("\n")
    (d / "latin.txt").write_bytes("Zoë läuft.".encode("latin-1"))
    (d / "binary.txt").write_bytes(b"\x00\x01\x02story")
    (d / "big.txt").write_bytes(b"a " * 600_000)
    (d / "story.docx").write_bytes(b"PK\x03\x04 Ada climbs")
    (d / "story.pdf").write_bytes(b"%PDF-1.4")
    (d / "bad.yaml").write_text("title: [unclosed\ntext: x")
    (d / "list.yaml").write_text("- just\n- a list\n")
    (d / "nested.json").write_text("[" * 50000 + "]" * 50000)
    (d / "nostory.json").write_text('{"title": "t"}')
    (d / "badcast.yaml").write_text("title: t\ncast: [{name: A, identity_image: ../../etc/passwd}]\ntext: A climbs.\n")
    (d / "dupcast.yaml").write_text("title: t\ncast: [A, A]\ntext: A climbs.\n")
    (d / "vgot").mkdir(); (d / "vgot" / "image_prompt_pairs.json").write_text(json.dumps([{"prompt": "no labels at all"}]))
    (d / "vgot2").mkdir(); (d / "vgot2" / "image_prompt_pairs.json").write_text(
        json.dumps([{"prompt": "Character: A.", "ip_img_path": "/etc/passwd"}]))
    (d / "bomb").mkdir(); _png_claiming(d / "bomb" / "avatar_A.png", 30000, 30000)
    (d / "bomb" / "image_prompt_pairs.json").write_text(json.dumps([{"prompt": "Character: A.", "ip_img_path": "avatar_A.png"}]))
    (d / "bigtitle.json").write_text('{"title": ' + "1" * 5000 + ', "story": "Ada climbs the stairs."}')
    (d / "bigtitle.yaml").write_text("title: " + "1" * 5000 + "\nstory: Ada climbs the stairs.\n")
    (d / "deep.yaml").write_text("title: t\nstory: " + "[" * 50_000 + "]" * 50_000 + "\n")
    (d / "deep2.yaml").write_text("title: t\ncast: " + "[" * 40 + "]" * 40 + "\nstory: Ada climbs.\n")
    (d / "punct.txt").write_text("!!! ??? ... --- ,,, ;;;\n\n*** ### !!!\n")
    (d / "unclosed.md").write_text("---\ntitle: Lighthouse\ncast: [Ada]\n\nAda climbs the stairs of the lighthouse.\n")
    (d / "casecast.yaml").write_text("title: t\ncast: [Ada, ADA]\nstory: Ada climbs the stairs.\n")
    return d


FILE_CASES = [("empty.txt", "the story is empty"), ("latin.txt", "not UTF-8"), ("binary.txt", "NUL bytes"),
              ("big.txt", "byte limit"), ("story.docx", "is not a story format"), ("story.pdf", "is not a story format"),
              ("bad.yaml", "not valid YAML"), ("list.yaml", None), ("nested.json", "nested too deeply"), ("nostory.json", None),
              ("badcast.yaml", "identity_image"), ("dupcast.yaml", "duplicate"), ("vgot", "entry 0: the prompt has none"),
              ("vgot2", "entry 0: ip_img_path"), ("bomb", "too large"), ("missing.md", "not found"), (".", "is a folder"),
              ("bigtitle.json", "a number has more than 4,300 digits"), ("bigtitle.yaml", "a number has more than 4,300 digits"),
              ("deep.yaml", "nests"), ("deep2.yaml", "nests more than 32 levels"),
              ("punct.txt", "has no words (only punctuation or symbols)"),
              ("unclosed.md", "the front matter opened by '---' on line 1 is never closed"),
              ("casecast.yaml", "cast = ['ADA', 'Ada'] has duplicate names (names differing only in case")]


@pytest.mark.parametrize("name, words", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_story(sandbox, capsys, name, words):
    d = _files(sandbox)
    _one_line(capsys, ["run", d / name, "--run-dir", "run", "--quiet"], words)
    assert not (sandbox / "run").exists()


CLI_CASES = [(["info", "--device", "foo"], "device 'foo'"), (["info", "--device", "cuda"], "CUDA"),
             (["run", "--example", "nope"], "the examples are"), (["run"], "no story"),
             (["run", STORY, "--example", "lighthouse"], "not both"), (["run", STORY, "--fps", "-1"], "fps = -1"),
             (["run", STORY, "--fps", "nan"], "fps = nan"), (["run", STORY, "--seed", "-2"], "seed = -2"),
             (["run", STORY, "--device", "gpu"], "device 'gpu'"), (["run", STORY, "--preset", "huge"], "unknown preset"),
             (["script", STORY, "--run-dir", "run", "--timeout", "nan"], "timeout = nan"),
             (["script", STORY, "--run-dir", "run", "--timeout", "inf"], "timeout = inf"),
             (["script", STORY, "--run-dir", "run", "--retries", "-1"], "retries = -1"),
             (["script", STORY, "--run-dir", "run", "--max-tries", "0"], "max_tries = 0"),
             (["script", STORY, "--run-dir", "run", "--planner", "openai", "--base-url", "ftp://x"], "must start with http"),
             (["script", STORY, "--run-dir", "run", "--api-key-env", "NO_SUCH_VAR_X"], "not set"),
             (["script", STORY], "--run-dir is required"), (["script", STORY, "--from", "vgot", "--run-dir", "run"], "not VGoT's"),
             (["keyframes", "nowhere"], "not a run folder"), (["shots", "nowhere"], "not a run folder"),
             (["transitions", "nowhere"], "not a run folder"), (["resume", "nowhere"], "not a run folder"),
             (["eval", "nowhere.mp4"], "not found"), (["eval"], "give a run folder or videos"),
             (["eval", "--compare", "a"], "at least two"), (["eval", "x.mp4", "--reference", "ada"], "NAME=IMAGE"),
             (["eval", "nowhere", "--protocol", "vgot"], "not a vgot run folder"),
             (["batch", "nowhere"], "not a folder of stories"), (["train-camera", "nowhere", "--steps", "1"], None),
             (["demo", "--example", "nope"], "the examples are"),
             (["run", STORY, "--run-dir", ""], "--run-dir is empty"), (["script", STORY, "--run-dir", ""], "--run-dir is empty"),
             (["run", STORY, "--run-dir", "/etc"], "/etc: not a vgot run folder"),
             (["script", STORY, "--run-dir", "/etc"], "/etc: not a vgot run folder"),
             (["run", STORY, "--fps", "1e-300"], "fps = 1e-300: must be a number in [1, 240]"),
             (["train-camera", "nowhere", "--cam-dim", "99999999999"], "cam_dim = 99999999999 is outside [1, 4096]"),
             (["batch", STORIES, "-p", "story=x"], "-p story: the batch sets story for each story itself"),
             (["batch", STORIES, "-p", "preset=sd15"], "-p preset: the batch sets preset for each story itself; use --preset"),
             (["batch", STORIES, "-p", "seed=3"], "-p seed: the batch sets seed for each story itself; use --seed"),
             (["batch", STORIES, "-p", "run_dir=x"], "-p run_dir: the batch sets run_dir for each story itself; use --out"),
             (["batch", STORIES, "-p", "nosuch=1"], "-p nosuch: the run notebook has no parameter 'nosuch'"),
             (["batch", STORIES, "-p", "evaluate=3"], "-p evaluate = 3: the notebook declares evaluate as bool"),
             (["batch", STORIES, "-p", "novalue"], "expected NAME=VALUE"),
             (["batch", STORIES, "-p", "camera=" + "[" * 50_000], "-p camera: the value nests 50,000 levels deep"),
             (["batch", STORIES, "--preset", "huge"], "unknown preset 'huge'"), (["batch", STORIES, "--seed", "-5"], "seed = -5"),
             (["batch", STORIES, "--notebook", "/etc/passwd"], "--notebook /etc/passwd: not a Jupyter notebook")]


@pytest.mark.parametrize("argv, words", CLI_CASES, ids=[" ".join(map(str, c[0]))[:50] for c in CLI_CASES])
def test_bad_command(sandbox, capsys, argv, words):
    err = _one_line(capsys, argv, words)
    assert sorted(p.name for p in sandbox.iterdir()) == ["keep.txt"]    # no run folder made, no kernel started
    assert "root:" not in err                                            # no byte of /etc/passwd echoed


def test_corpus_size():
    assert len(CASES) + len(FILE_CASES) + len(CLI_CASES) >= 118


# --- hostile run folders: a finished run, tampered with one way per case -------------------------------------------
import shutil


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    "A finished tiny run of the fox story (two shots are enough), made once for every tampering below."
    d = tmp_path_factory.mktemp("hostile") / "run"
    assert main(["run", str(STORY), "--run-dir", str(d), "--quiet", "--set", "script.max_shots=2"]) == 0
    return d


@pytest.fixture
def copy(finished, tmp_path, monkeypatch):
    "A private copy of the finished run (symlinks kept as links) and a secret file outside it."
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT")
    shutil.copytree(finished, tmp_path / "run", symlinks=True)
    return tmp_path / "run"


def _tamper_json(path, **changes):
    d = json.loads(path.read_text()); d.update(changes); path.write_text(json.dumps(d))


def _link(copy, rel):
    (copy / rel).unlink(); (copy / rel).symlink_to(copy.parent / "secret.txt")


RUN_CASES = [  # (id, tampering, command after RUN, expected words)
    ("script.json random bytes: keyframes", lambda c: (c / "script.json").write_bytes(os.urandom(300) + b"\x9a"),
     ["keyframes"], "script.json: not UTF-8 text"),
    ("script.json not JSON: eval", lambda c: (c / "script.json").write_text("{oops"), ["eval", "--preset", "tiny", "--quiet"],
     "script.json: not valid JSON"),
    ("run.json artifacts = []: resume", lambda c: _tamper_json(c / "run.json", artifacts=[]), ["resume", "--quiet"],
     "run.json: `artifacts` must be a mapping, found a list; fix or remove the file"),
    ("run.json stages = 'x': resume", lambda c: _tamper_json(c / "run.json", stages="x"), ["resume", "--quiet"],
     "run.json: `stages` must be a mapping, found a string; fix or remove the file"),
    ("run.json random bytes: resume", lambda c: (c / "run.json").write_bytes(b"\xff\xfe" + os.urandom(200)),
     ["resume", "--quiet"], "run.json: not UTF-8 text"),
    ("run.json a file path leaving the run: resume",
     lambda c: _tamper_json(c / "run.json", artifacts={"script": {"inputs": "x", "files": ["../secret.txt"]}}),
     ["resume", "--quiet"], "`artifacts.script.files` holds '../secret.txt', which leaves its folder"),
    ("run.json config.preset = {}: resume",
     lambda c: _tamper_json(c / "run.json", config={**json.loads((c / "run.json").read_text())["config"], "preset": {}}),
     ["resume", "--quiet"], "run.json: config: preset = {}: must be a name"),
    ("run.json config.dtype = [1]: run",
     lambda c: _tamper_json(c / "run.json", config={**json.loads((c / "run.json").read_text())["config"], "dtype": [1]}),
     ["RUN-AGAIN"], "run.json: config: dtype = [1]: must be a name (text), e.g. auto; fix or remove the file"),
    ("symlinked script.json: keyframes", lambda c: _link(c, "script.json"), ["keyframes"], "script.json: is a symbolic link"),
    ("symlinked script.json: eval", lambda c: _link(c, "script.json"), ["eval", "--preset", "tiny", "--quiet"], "is a symbolic link"),
    ("symlinked shots/000.json: transitions", lambda c: _link(c, "shots/000.json"), ["transitions"],
     "shots/000.json: is a symbolic link"),
    ("symlinked shots/000.json: eval", lambda c: _link(c, "shots/000.json"), ["eval", "--preset", "tiny", "--quiet"], "is a symbolic link"),
    ("symlinked run.json: run", lambda c: _link(c, "run.json"), ["RUN-AGAIN"], "run.json: is a symbolic link"),
    ("symlinked run.json: eval", lambda c: _link(c, "run.json"), ["eval", "--preset", "tiny", "--quiet"], "run.json: is a symbolic link"),
    ("symlinked .lock: resume", lambda c: _link(c, ".lock"), ["resume", "--quiet"], ".lock: the run folder's lock file is a symbolic link"),
    ("symlinked .lock: eval", lambda c: _link(c, ".lock"), ["eval", "--preset", "tiny", "--quiet"], "lock file is a symbolic link"),
    ("symlinked metrics png: run --force assemble",
     lambda c: ((c / "metrics.json").write_text("{}"), (c / "metrics_x.png").symlink_to(c.parent / "secret.txt")),
     ["RUN-AGAIN", "--force", "assemble"], "metrics_x.png: is a symbolic link"),
    ("symlinked keyframe: resume", lambda c: _link(c, "keyframes/001.png"), ["resume", "--quiet", "--force", "assemble"],
     "keyframes/001.png: is a symbolic link"),
    ("symlinked run.log: resume", lambda c: _link(c, "run.log"), ["resume", "--quiet"], "run.log: is a symbolic link"),
    ("symlinked assets folder: resume", lambda c: ((c / "assets").rename(c / "assets_x"), (c / "assets").symlink_to(c.parent)),
     ["resume", "--quiet", "--force", "keyframes"], "assets: is a symbolic link"),
    ("truncated shot: eval", lambda c: (c / "shots/001.mp4").write_bytes((c / "shots/001.mp4").read_bytes()[:300]),
     ["eval", "--preset", "tiny", "--quiet"], "shots/001.mp4: not a readable video"),
    ("png as shot: eval", lambda c: shutil.copyfile(c / "keyframes/000.png", c / "shots/000.mp4"),
     ["eval", "--preset", "tiny", "--quiet"], "shots/000.mp4: not a readable video (it is a PNG image, not a video)"),
]


@pytest.mark.parametrize("case", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_tampered_run_folder(copy, capsys, case):
    _, tamper, cmd, words = case
    tamper(copy)
    argv = ["run", STORY, "--run-dir", copy, "--quiet", *cmd[1:]] if cmd[0] == "RUN-AGAIN" else [cmd[0], copy, *cmd[1:]]
    _one_line(capsys, argv, words)
    assert (copy.parent / "secret.txt").read_text() == "TOP-SECRET-CONTENT"         # never written through
    for f in copy.rglob("*"):                                                         # nor read into the run's files
        if f.is_file() and not f.is_symlink():
            assert b"TOP-SECRET" not in f.read_bytes() and b"VE9QLVNFQ1JFV" not in f.read_bytes(), f


def test_script_json_random_bytes_is_redone_by_resume(copy, capsys):
    "A corrupted artifact under `vgot resume` is the 'redo the stage' option taken: made again, the same as before."
    before = (copy / "script.json").read_bytes()
    (copy / "script.json").write_bytes(os.urandom(400))
    assert main(["resume", str(copy), "--quiet"]) == 0
    assert (copy / "script.json").read_bytes() == before


def test_resume_removes_orphan_temporaries(copy, capsys):
    "A killed write leaves `.NAME.XXXXXXXX.tmp.EXT`; the next run of the folder removes exactly those."
    planted = [copy / "shots" / ".001.mp4.k3x9ab_q.tmp.mp4", copy / ".run.json.a1b2c3d4.tmp.json",
               copy / "keyframes" / ".000.latent.safetensors.zz99yy88.tmp.safetensors"]
    for p in planted: p.write_bytes(b"half-written")
    (copy / "notes.tmp.txt").write_text("the user's own file")
    assert main(["resume", str(copy), "--quiet"]) == 0
    assert not any(p.exists() for p in planted) and (copy / "notes.tmp.txt").exists()


def test_eval_takes_the_run_folder_lock(copy, capsys):
    from vgot.core import RunStore
    with RunStore(copy, create=False).lock():
        _one_line(capsys, ["eval", copy, "--preset", "tiny", "--quiet"], "is in use by PID")


def test_eval_compare_refuses_a_symlinked_metrics_json(copy, capsys, tmp_path):
    (tmp_path / "other").mkdir(); (tmp_path / "other" / "metrics.json").symlink_to(tmp_path / "secret.txt")
    _one_line(capsys, ["eval", "--compare", tmp_path / "other", copy, "--quiet"], "metrics.json: is a symbolic link")


def _videos(d):
    from PIL import Image
    from vgot.media import write_video
    import numpy as np
    d.mkdir()
    write_video(d / "good.mp4", np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), 8)
    (d / "random.mp4").write_bytes(os.urandom(4000)); (d / "empty.mp4").write_bytes(b"")
    Image.new("RGB", (32, 32)).save(d / "png.mp4", format="PNG")
    (d / "truncated.mp4").write_bytes((d / "good.mp4").read_bytes()[:-300]); (d / "text.mp4").write_text("not a video\n" * 20)


VIDEO_CASES = [("random.mp4", "not a readable video"), ("empty.mp4", "the file is empty (0 bytes)"),
               ("png.mp4", "it is a PNG image, not a video"), ("truncated.mp4", "not a readable video"),
               ("text.mp4", "not a readable video")]


@pytest.mark.parametrize("name, words", VIDEO_CASES, ids=[c[0] for c in VIDEO_CASES])
def test_eval_refuses_what_is_no_video(tmp_path, monkeypatch, capsys, name, words):
    monkeypatch.chdir(tmp_path); _videos(tmp_path / "v")
    _one_line(capsys, ["eval", tmp_path / "v" / name, "--preset", "tiny", "--quiet"], f"{name}: ", words)
    assert not (tmp_path / "metrics.json").exists()


def test_eval_says_one_line_per_bad_video(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path); _videos(tmp_path / "v")
    rc = main(["eval", *(str(tmp_path / "v" / n) for n in ("good.mp4", "random.mp4", "png.mp4")), "--preset", "tiny", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(l.startswith("vgot: error: ") for l in lines), err
    assert "random.mp4" in lines[0] and "png.mp4" in lines[1] and not (tmp_path / "metrics.json").exists()


def test_run_dir_that_is_not_a_run_is_refused(sandbox, capsys):
    (sandbox / "docs").mkdir(); (sandbox / "docs" / "thesis.tex").write_text("x")
    _one_line(capsys, ["run", STORY, "--run-dir", sandbox / "docs", "--quiet"], "docs: not a vgot run folder (it holds thesis.tex")
    assert sorted(p.name for p in (sandbox / "docs").iterdir()) == ["thesis.tex"]


@pytest.mark.parametrize("kind", ["folder", "text"])
def test_identity_ref_must_be_an_image(sandbox, capsys, kind):
    chars = sandbox / "run" / "assets" / "characters"; chars.mkdir(parents=True)
    (chars / "ada").mkdir() if kind == "folder" else (chars / "ada").write_text("not an image")
    story = sandbox / "s.yaml"
    story.write_text("title: t\ncast: [{name: Ada, identity_image: ada}]\nstory: Ada climbs the stairs of the lighthouse.\n")
    _one_line(capsys, ["run", story, "--run-dir", sandbox / "run", "--quiet"], "cast Ada: identity_image",
              "not found" if kind == "folder" else "not a readable image")


def test_control_characters_never_reach_prompts_or_the_report(sandbox, capsys):
    story = sandbox / "s.json"
    story.write_text(json.dumps({"title": "Tide\u001b[31m", "story": "Ada\u001b[2J climbs\u0007 the stairs.\n\nThe lamp \u001b]0;x\u0007glows."}))
    assert main(["script", str(story), "--run-dir", str(sandbox / "run"), "--quiet"]) == 0
    text = (sandbox / "run" / "script.json").read_text()
    assert "\\u001b" not in text and "\\u0007" not in text and "\x1b" not in text
    from vgot.core import RunStore, Script
    from vgot.pipeline import write_report
    store = RunStore(sandbox / "run"); sc = Script.load(store.script_path)
    sc.shots[0].prompt = "Ada \x1b[31mred"                                       # a script written by hand
    write_report(store, sc, [])
    html = (sandbox / "run" / "report.html").read_text()
    assert "\x1b" not in html and "Ada \\x1b[31mred" in html


def test_a_squeezed_story_says_so_under_quiet(sandbox, capsys):
    story = sandbox / "long.txt"
    story.write_text("\n\n".join(f"Ada climbs stair number {i} of the old lighthouse." for i in range(3000)))
    assert main(["run", str(story), "--run-dir", str(sandbox / "run"), "--quiet", "--stop-after", "script"]) == 0
    err = capsys.readouterr().err
    assert "vgot: warning: the story has 3,000 segments (sentences and paragraphs) but max_shots is" in err, err
