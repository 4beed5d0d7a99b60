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
          ("colour=red", "unknown setting"), ("novalue", "expected key=value")]
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
    return d


FILE_CASES = [("empty.txt", "the story is empty"), ("latin.txt", "not UTF-8"), ("binary.txt", "NUL bytes"),
              ("big.txt", "byte limit"), ("story.docx", "is not a story format"), ("story.pdf", "is not a story format"),
              ("bad.yaml", "not valid YAML"), ("list.yaml", None), ("nested.json", None), ("nostory.json", None),
              ("badcast.yaml", "identity_image"), ("dupcast.yaml", "duplicate"), ("vgot", "entry 0: the prompt has none"),
              ("vgot2", "entry 0: ip_img_path"), ("bomb", "too large"), ("missing.md", "not found"), (".", "is a folder")]


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
             (["demo", "--example", "nope"], "the examples are")]


@pytest.mark.parametrize("argv, words", CLI_CASES, ids=[" ".join(map(str, c[0]))[:50] for c in CLI_CASES])
def test_bad_command(sandbox, capsys, argv, words):
    _one_line(capsys, argv, words)
    assert sorted(p.name for p in sandbox.iterdir()) == ["keep.txt"]


def test_corpus_size():
    assert len(CASES) + len(FILE_CASES) + len(CLI_CASES) >= 118
