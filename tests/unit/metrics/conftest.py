"""Tiny random networks and small images shared by the metric tests (nothing downloads)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from stylex.metrics.networks import VGG19, InceptionV3, LPIPSNet


@pytest.fixture(scope="session")
def vgg() -> VGG19:
    return VGG19.tiny(seed=0)


@pytest.fixture(scope="session")
def lpips_net() -> LPIPSNet:
    return LPIPSNet.tiny(seed=0)


@pytest.fixture(scope="session")
def inception() -> InceptionV3:
    return InceptionV3.tiny(seed=0, input_size=75)  # 75 = the smallest input Inception-v3 accepts; keeps tests fast


@pytest.fixture()
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(4, 3, 64, 64, generator=g)


@pytest.fixture()
def other_images() -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.rand(4, 3, 64, 64, generator=g)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test may touch the network or a real weight cache; one thread per test."""
    monkeypatch.setenv("STYLEX_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    except ImportError:  # pragma: no cover
        pass
    old, threads = torch.hub.get_dir(), torch.get_num_threads()
    torch.hub.set_dir(str(tmp_path_factory.mktemp("torch_hub")))
    torch.set_num_threads(1)  # tiny networks gain nothing from threads, and 2 cores may be shared
    yield
    torch.set_num_threads(threads)
    torch.hub.set_dir(old)
