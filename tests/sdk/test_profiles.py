"""Device profiles: the built-in TOML files load and validate; user files extend them; bad ones fail clearly."""

import pytest

from edgesmith.profiles import FIELDS, list_profiles, load_profile
from edgesmith.runtime.errors import InputError

BUILT_IN = ["arm64-phone", "rpi-zero-2w", "rpi4", "rpi5", "x86-host"]


def test_every_built_in_profile_loads_with_all_fields():
    assert list_profiles() == BUILT_IN
    for name in BUILT_IN:
        profile = load_profile(name)
        assert profile["name"] == name
        assert set(FIELDS) <= set(profile)
        assert 1 <= profile["default_threads"] <= profile["cores"]
        assert 0 < profile["idle_w"] < profile["active_w"]
        assert profile["peak_int8_gmacs"] > 0 and "estimate" in profile["meters"]


def test_peaks_follow_cores_clock_and_simd_width():
    # SDOT doubles the A76's int8 rate over the A72's SMLAL, and the Pi 5 clocks 2.4 vs 1.5 GHz
    assert load_profile("rpi5")["peak_int8_gmacs"] == pytest.approx(load_profile("rpi4")["peak_int8_gmacs"] * 2 * 2.4 / 1.5)
    assert load_profile("rpi-zero-2w")["peak_int8_gmacs"] < load_profile("rpi4")["peak_int8_gmacs"]


def test_a_user_file_extends_a_built_in_profile(tmp_path):
    path = tmp_path / "my-pi.toml"
    path.write_text('extends = "rpi4"\nname = "my-pi"\npeak_int8_gmacs = 115\n')
    profile = load_profile(path)
    assert profile["name"] == "my-pi"
    assert profile["peak_int8_gmacs"] == 115.0 and isinstance(profile["peak_int8_gmacs"], float)
    assert profile["idle_w"] == load_profile("rpi4")["idle_w"]


@pytest.mark.parametrize("text, message", [
    ('name = "x"\ncores = 4\n', "missing"),
    ('extends = "rpi4"\ndefault_threads = 9\n', "default_threads"),
    ('extends = "rpi4"\nactive_w = 1.0\n', "active_w"),
    ('extends = "rpi4"\ncores = "four"\n', "cores"),
    ("name = [unclosed\n", "not a valid TOML"),
])
def test_bad_profile_files_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_profile(path)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(InputError, match="rpi4"):
        load_profile("rpi3")
