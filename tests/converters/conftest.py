import pytest

from tests.converters import trained


@pytest.fixture(scope="session")
def digits():
    return trained.digits()


@pytest.fixture(scope="session")
def residual_cnn():
    return trained.residual_cnn()


@pytest.fixture(scope="session")
def sequential_mlp():
    return trained.sequential_mlp()
