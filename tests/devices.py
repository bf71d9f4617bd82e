"""``DEVICES``: parametrise a test over the CPU and CUDA (the CUDA case is marked ``cuda`` and
skips without a GPU), so the GPU code paths run on the CPU here and on the GPU where present::

    @pytest.mark.parametrize("device", DEVICES)
    def test_something(device): ...

``pytest -m cuda`` runs the CUDA cases only.
"""

import pytest
import torch

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]),
]
