"""A cast's identity image beside the story file: found there, confined to the story's folder, copied into the run."""
import json

import numpy as np
import pytest
from PIL import Image

from vgot.core import RunStore, VgotError
from vgot.script import generate_script


def _story(d, image="ada.png"):
    (d / "story.yaml").write_text(
        f"title: Beside\ncast:\n  - name: Ada\n    description: a red circle\n    identity_image: {image}\n"
        "story: Ada waits on the beach. Ada walks in the snow.\n"
    )
    return d / "story.yaml"


def test_identity_image_beside_the_story_is_copied_into_the_run(tmp_path):
    d = tmp_path / "stories"
    d.mkdir()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(d / "ada.png")
    store = RunStore(tmp_path / "run")
    script = generate_script(_story(d), store=store)
    assert (store.assets_dir / "ada.png").read_bytes() == (d / "ada.png").read_bytes()
    assert any(s.identity_refs.get("Ada") == "ada.png" for s in script.shots)


def test_identity_image_already_in_the_run_still_works(tmp_path):
    d = tmp_path / "stories"
    d.mkdir()
    store = RunStore(tmp_path / "run")
    store.assets_dir.mkdir(parents=True)
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(store.assets_dir / "ada.png")
    generate_script(_story(d), store=store)  # not beside the story: the run's own copy is used
    assert np.asarray(Image.open(store.assets_dir / "ada.png"))[0, 0, 0] == 90


def test_identity_image_missing_in_both_places_names_both(tmp_path):
    d = tmp_path / "stories"
    d.mkdir()
    with pytest.raises(VgotError, match="nor beside the story file"):
        generate_script(_story(d), store=RunStore(tmp_path / "run"))


def test_identity_image_leading_out_of_the_story_folder_is_refused(tmp_path):
    d = tmp_path / "stories"
    d.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "secret.png")
    (d / "ada.png").symlink_to(tmp_path / "secret.png")
    store = RunStore(tmp_path / "run")
    with pytest.raises(VgotError, match="symbolic link|outside"):
        generate_script(_story(d), store=store)
    assert not (store.assets_dir / "ada.png").exists()
    for bad in ("../secret.png", "/etc/passwd"):
        with pytest.raises(VgotError):
            generate_script(_story(d, bad), store=RunStore(tmp_path / f"run{len(bad)}"))


def test_cli_script_takes_the_portrait_beside_the_story(tmp_path):
    from vgot.cli import main

    d = tmp_path / "stories"
    d.mkdir()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(d / "ada.png")
    assert main(["script", str(_story(d)), "--run-dir", str(tmp_path / "run")]) in (0, None)
    assert (tmp_path / "run" / "assets" / "characters" / "ada.png").is_file()
    shots = json.loads((tmp_path / "run" / "script.json").read_text())["shots"]
    assert any(s["identity_refs"].get("Ada") == "ada.png" for s in shots)
