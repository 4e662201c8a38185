import os

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get("RXMRL_SLOW") == "1"
    has_cuda = torch.cuda.is_available()
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: set RXMRL_SLOW=1 to run"))
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # small ops stall on a loaded 2-core machine with more threads
    yield
