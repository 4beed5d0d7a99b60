"""Copy the files the installed package needs into vgot/resources/ (package data), or check that they match.

Sources (edit these): nbs/runs/generate.ipynb (the papermill run notebook) and data/stories/ (the example stories).
vgot/resources/world/ (the world preset's trained weights) is written by `make world` and not touched here.
`make export` runs this; `make check-export` runs it with --check and fails when a copy is stale.
"""
import filecmp, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "vgot" / "resources"
STORY_EXTS = {".txt", ".text", ".md", ".markdown", ".yaml", ".yml", ".json", ".png"}  # stories, and the portraits beside them
TRAINED = DEST / "world"  # the world preset's weights: `make world` writes them, this script leaves them alone


def _trained(p: Path) -> bool:
    return TRAINED in p.parents


def pairs() -> list[tuple[Path, Path]]:
    "(source, copy) for every file the package ships."
    out = [(ROOT / "nbs" / "runs" / "generate.ipynb", DEST / "generate.ipynb")]
    for p in sorted((ROOT / "data" / "stories").iterdir()):
        if p.is_file() and p.suffix.lower() in STORY_EXTS and not p.name.startswith("."):
            out.append((p, DEST / "stories" / p.name))
    return out


def stale() -> list[str]:
    "Copies that differ from their source, are missing, or have no source any more."
    ps = pairs()
    bad = [str(d.relative_to(ROOT)) for s, d in ps if not d.is_file() or not filecmp.cmp(s, d, shallow=False)]
    have = {d for _, d in ps}
    bad += [str(p.relative_to(ROOT)) + " (no source)" for p in DEST.rglob("*")
            if p.is_file() and p not in have and not _trained(p)]
    return bad


def sync():
    for s, d in pairs():
        d.parent.mkdir(parents=True, exist_ok=True)
        if not d.is_file() or not filecmp.cmp(s, d, shallow=False): shutil.copyfile(s, d)
    have = {d for _, d in pairs()}
    for p in list(DEST.rglob("*")):
        if p.is_file() and p not in have and not _trained(p): p.unlink()


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        bad = stale()
        if bad:
            print("vgot/resources/ is stale (run `make export` and commit): " + ", ".join(bad), file=sys.stderr)
            sys.exit(1)
        print("vgot/resources/ matches nbs/runs/generate.ipynb and data/stories/")
    else:
        sync()
