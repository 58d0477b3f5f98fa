"""benchmarks/head_settings.py: a head setting is read by name and type, and a wrong one is refused by name."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from head_settings import parse_setting  # noqa: E402


def test_settings_are_read_with_the_head_configs_types():
    assert parse_setting("bag_dim=512,dropout=0.5") == {"bag_dim": 512, "dropout": 0.5}
    assert isinstance(parse_setting("weight_decay=1e-5")["weight_decay"], float)


@pytest.mark.parametrize("bad", ["bag_size=512", "dropout", "dropout="])
def test_an_unknown_or_valueless_setting_is_refused_by_name(bad):
    with pytest.raises(SystemExit, match="bag_dim"):
        parse_setting(bad)
