"""The rules planner takes a camera direction the story states before guessing a move from the verbs."""
from vgot.script import generate_script


def test_stated_camera_direction_beats_the_verbs():
    s = generate_script(
        "Ada walks home as the camera pans right.\n\nBo climbs the hill while the camera tilts down.\n\n"
        "Ada sees the sea. The camera zooms out.\n\nBo runs to the harbour."
    )
    m = [sh.motion for sh in s.shots]
    assert m[0].pan > 0  # "home" alone would pan left
    assert m[1].tilt < 0  # "climbs" alone would tilt up
    assert m[2].zoom < 1  # "sees" alone would zoom in
    assert m[3].pan != 0 and m[3].zoom == 1.0  # nothing stated: the verb's tracking pan
    assert "camera pans right" in s.shots[0].camera and "camera tilts down" in s.shots[1].camera


def test_the_camera_sentence_is_not_what_happens_and_the_time_of_day_sets_the_light():
    s = generate_script("Bo walks to the right on the beach at noon. The camera pans right.\n\nBo jumps in the snow at dusk.")
    assert s.shots[0].relation == "Bo walks to the right on the beach at noon"
    assert s.shots[1].background == "the snow"
    assert s.shots[1].hdr == "warm orange sunset light, long shadows"  # dusk, though the snow comes first
