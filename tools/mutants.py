"""Mutation check of the method's core: does the test suite notice when a piece of the method is broken?

Each mutation below breaks one thing the method rests on (an exact text replacement in the exported code, vgot/*.py).
For each, vgot/ is copied into a temporary folder, the copy is mutated, and only the tests that guard that piece run
against the copy (PYTHONPATH puts the copy first). The working tree is never changed, so an interruption (Ctrl-C)
leaves nothing to restore; the temporary folder is removed on the way out.

    python tools/mutants.py              # every mutation: a line each, then `N/M mutations caught`
    python tools/mutants.py --list       # the mutations and their guarding tests
    python tools/mutants.py --only warp  # mutations whose name contains 'warp'

First the guarding tests run once on the unmutated copy and must pass (else a failure would mean nothing); then a
mutation is caught when its tests fail (pytest exit status 1). Exit status: 0 when every mutation is caught, 1 when
one survives, 2 when a mutation no longer applies (its text is not found exactly once: update it here) or the guarding
tests fail on the unmutated code.
`make mutants` runs it; it is not part of `make test`.
"""
import argparse, os, shutil, signal, subprocess, sys, tempfile, time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Mutation:
    name: str  # what is broken
    file: str  # the exported module, relative to vgot/
    edits: list  # (old, new) exact text replacements; each old must occur exactly once
    tests: list  # pytest node ids that guard it


MUTATIONS = [
    Mutation(
        "zero the decoupled branch",
        "attention.py",
        [
            (
                "z = z + λ * F.scaled_dot_product_attention(query, kb, vb, dropout_p=0.0, is_causal=False)",
                "z = z + 0.0 * F.scaled_dot_product_attention(query, kb, vb, dropout_p=0.0, is_causal=False)",
            ),
            ("            z = z + λ * attention(q, kb, vb)", "            z = z + 0.0 * attention(q, kb, vb)"),
        ],
        ["tests/test_attention.py::test_pipeline_parity_with_diffusers_ip_adapter"],
    ),
    Mutation(
        "drop the camera input",
        "camera.py",
        [
            (
                "return self.mlp(camera_features(traj.to(self.mlp[0].weight), self.n_freqs))",
                "static = torch.tensor([0.0, 0.0, 1.0]).to(self.mlp[0].weight).expand(traj.shape)\n"
                "        return self.mlp(camera_features(static, self.n_freqs))",
            )
        ],
        ["tests/test_camera_dit.py::test_batched_trajectories_are_tiled_over_the_guidance_halves"],
    ),
    Mutation(
        "drop the last-frame condition",
        "transitions.py",
        [
            (
                'last_kw = {} if pipe.config.expand_timesteps else {"last_image": last}',
                "last_kw = {}",
            ),
            ("for im, f in ((first, 0), (last, N - 1)) if im is not None", "for im, f in ((first, 0),) if im is not None"),
        ],
        ["tests/test_backends.py::test_conditioned_transition_matches_both_boundary_frames_best"],
    ),
    Mutation(
        "reverse the GP order",
        "gp_path.py",
        [
            (
                "z_obs = torch.cat([z_end_frames, z_start_frames.to(z_end_frames)])",
                "z_obs = torch.cat([z_start_frames.to(z_end_frames), z_end_frames])",
            )
        ],
        ["tests/test_transitions.py::test_gpr_continues_constant_velocity[4-8]"],
    ),
    Mutation(
        "skip the warp",
        "camera.py",
        [
            (
                "noise = warped_noise(latent_shape, A, generator)  # (F, C, h, w)",
                "noise = torch.randn((len(traj), *latent_shape), generator=generator)",
            ),
            ("z = warp(keyframe_latent, A)", "z = keyframe_latent.expand(len(A), *keyframe_latent.shape).clone()"),
        ],
        ["tests/test_shots.py::test_warp_latents_follow_the_script"],
    ),
    Mutation(
        "ignore the keyframe in the I2V call",
        "shots.py",
        [
            (
                "    n_lat, (C, h, w) = cam.noise.shape[0], cam.noise.shape[1:]\n",
                '    image = Image.new("RGB", image.size, (128, 128, 128))\n'
                "    n_lat, (C, h, w) = cam.noise.shape[0], cam.noise.shape[1:]\n",
            )
        ],
        ["tests/test_shots.py::test_the_keyframe_conditions_every_backend"],
    ),
    Mutation(
        "continue on the encoded image instead of the latent frames before",
        "shots.py",
        [
            ("            cond[:, :, :k], mask[:, :, :k] = c, 0\n", "            pass\n"),
            (
                "        latents[:, n_extra : n_extra + n], mask[:, n_extra : n_extra + n] = tok, 1.0\n",
                "        pass\n",
            ),
        ],
        ["tests/test_continuation.py::test_a_continued_shot_starts_on_the_exact_latents_of_the_one_before"],
    ),
]


def apply(m: Mutation, pkg: Path):
    "Apply `m` to the copy of vgot/ at `pkg`; SystemExit(2) when a replacement's text is not there exactly once."
    p = pkg / m.file
    src = p.read_text()
    for old, new in m.edits:
        n = src.count(old)
        if n != 1:
            sys.exit(f"mutants: '{m.name}': the text to replace occurs {n} times in vgot/{m.file} "
                     f"(expected once); update tools/mutants.py: {old[:70]!r}")  # fmt: skip
        src = src.replace(old, new)
    p.write_text(src)


def run(m: Mutation, python: str, verbose: bool) -> tuple:
    "Run `m`'s tests against a mutated copy of vgot/ (no edits: the copy as it is): (caught, pytest's exit status, seconds)."
    with tempfile.TemporaryDirectory(prefix="vgot-mutant-") as tmp:
        pkg = Path(tmp) / "vgot"
        shutil.copytree(ROOT / "vgot", pkg, ignore=shutil.ignore_patterns("__pycache__"))
        apply(m, pkg)
        # PYTHONSAFEPATH: `python -m` and `-c` put no working directory (the checkout, with the real vgot/) first on
        # the path, here and in the processes the tests start
        env = {**os.environ, "PYTHONPATH": tmp, "PYTHONSAFEPATH": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("MKL_NUM_THREADS", "1")
        where = subprocess.run([python, "-c", "import vgot; print(vgot.__file__)"], env=env, capture_output=True,
                               text=True, cwd=ROOT)  # fmt: skip
        if not where.stdout.strip().startswith(str(pkg)):
            sys.exit(f"mutants: the mutated copy is not the vgot that Python imports ({where.stdout.strip() or where.stderr})")
        t0 = time.time()
        cmd = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests]
        out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=not verbose, text=True)
        dt = time.time() - t0
    if out.returncode not in (0, 1) and not verbose:  # 2-5: interrupted, internal or usage error, no tests collected
        print((out.stdout or "")[-2000:] + (out.stderr or "")[-2000:], file=sys.stderr)
    return out.returncode == 1, out.returncode, dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="list the mutations and their tests")
    ap.add_argument("--only", default="", help="run the mutations whose name contains this text")
    ap.add_argument("--python", default=sys.executable, help="the Python that runs the tests")
    ap.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    ap.add_argument("--no-baseline", action="store_true", help="skip the first run of the guarding tests unmutated")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # as Ctrl-C: the temporary copy is removed on the way out
    todo = [m for m in MUTATIONS if a.only in m.name]
    if not todo:
        sys.exit(f"mutants: no mutation name contains {a.only!r}")
    if a.list:
        for m in todo:
            print(f"{m.name} (vgot/{m.file}): {' '.join(m.tests)}")
        return 0
    for m in todo:  # every mutation applies before any test runs
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(ROOT / "vgot" / m.file, Path(tmp) / m.file)
            apply(m, Path(tmp))
    if not a.no_baseline:  # a failure only means something when the same tests pass on the code as it is
        tests = list(dict.fromkeys(t for m in todo for t in m.tests))
        ok, rc, dt = run(Mutation("baseline", todo[0].file, [], tests), a.python, a.verbose)
        if rc != 0:
            sys.exit(f"mutants: the guarding tests fail on the unmutated code (pytest exit status {rc}); fix them first")
        print(f"{'passes':>8}  baseline: the {len(tests)} guarding test(s) on the unmutated code  ({dt:.0f} s)", flush=True)
    caught = 0
    for m in todo:
        ok, rc, dt = run(m, a.python, a.verbose)
        caught += ok
        verdict = "caught" if ok else ("SURVIVED" if rc == 0 else f"ERROR (pytest exit status {rc})")
        print(f"{verdict:>8}  {m.name}  ({len(m.tests)} test(s), {dt:.0f} s)", flush=True)
    print(f"{caught}/{len(todo)} mutations caught")
    return 0 if caught == len(todo) else 1


if __name__ == "__main__":
    sys.exit(main())
