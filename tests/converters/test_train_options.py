"""Every training pass takes the recovery options the pipeline sets (``distill``, ``recovery_time``)."""

import pytest

from edgesmith.converters.errors import ConversionError, UnknownOptionError
from edgesmith.converters.registry import check_options, pass_options

TRAINING_PASSES = ("prune", "cluster", "channel_prune", "qat", "distill")


@pytest.mark.parametrize("name", TRAINING_PASSES)
def test_every_training_pass_takes_a_recovery_time(name):
    assert pass_options(name)["recovery_time"] is None
    check_options(name, {"recovery_time": 90.0})


@pytest.mark.parametrize("name", [name for name in TRAINING_PASSES if name != "distill"])
def test_every_training_pass_distils_by_default(name):
    assert pass_options(name)["distill"] is True
    check_options(name, {"distill": False})


@pytest.mark.parametrize("name", ["prune", "cluster", "channel_prune", "distill"])
def test_a_recovery_time_is_a_positive_number_of_seconds(name):
    with pytest.raises((ConversionError, UnknownOptionError), match="recovery_time"):
        check_options(name, {"recovery_time": -5})
