"""LPIPS (v0.1, AlexNet) between each stylized image and its content image: lower = more content kept."""
from __future__ import annotations

from torch import Tensor

from stylex.metrics.base import PerImageMetric, module_device
from stylex.metrics.networks import LPIPSNet


class LPIPS(PerImageMetric):
    """Per image: Σ_layers mean_hw w_l·(ŷ_l(x) − ŷ_l(c))², ŷ = channel-unit-normalised AlexNet relu1..5
    of the [-1,1]-mapped, LPIPS-scaled image (what lpips.LPIPS(net='alex')(2x−1, 2c−1) returns)."""

    name = "lpips"
    higher_is_better = False
    needs = "content"

    def __init__(self, net: LPIPSNet) -> None:
        self.net = net.eval()
        super().__init__()

    def describe_input(self) -> str:
        return "AlexNet LPIPS v0.1, [0,1] -> [-1,1] -> LPIPS scaling layer"

    def score(self, stylized: Tensor, reference: Tensor) -> Tensor:
        dev = module_device(self.net)
        return self.net(stylized.to(dev), reference.to(dev))
