"""Warm-started BatchNorm running statistics.

PyTorch's BatchNorm starts its running mean / variance at 0 / 1 and moves them by
`momentum` (0.1) per training batch, so after n batches the initial 1 still weighs 0.9^n. A
feature whose true variance is far from 1 (a fresh branch's projection, ~1e-3) is then divided by
the wrong number in eval mode for the first ~50 batches: the demo trains ~66, a test a handful, and
a branch seen through such a BatchNorm is shrunk 10-30× at test time and vanishes from the fused
embedding. `warm_start` makes every BatchNorm of a model average its first batches exactly
(momentum 1/(n+1) for the n-th batch: batch 1 sets the statistics, and 0 / 1 never count), then
continue as usual once 1/(n+1) falls below its own momentum. Training-mode outputs are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def _warm_momentum(module: nn.modules.batchnorm._BatchNorm, _inputs) -> None:
    if not module.training or not module.track_running_stats:
        return
    seen = getattr(module, "_warm_seen", None)
    if seen is None:  # first call in this process (a resumed run continues where it was)
        seen = int(module.num_batches_tracked)
    base = module._warm_base_momentum
    module.momentum = max(base, 1.0 / (seen + 1))
    module._warm_seen = seen + 1
    if module.momentum == base:  # warmed up: plain BatchNorm from here on
        module._warm_handle.remove()


def warm_start(model: nn.Module) -> nn.Module:
    """Give every BatchNorm in `model` warm-started running statistics (see the module doc)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is not None:
            module._warm_base_momentum = module.momentum
            module._warm_handle = module.register_forward_pre_hook(_warm_momentum)
    return model


@torch.no_grad()
def recalibrate(model: nn.Module, batches, forward) -> int:
    """ "Precise BN": recompute every BatchNorm's running statistics on the final weights, as
    the plain average over `batches` (training-mode forward passes, `forward(batch)`), instead of
    the exponential average collected while the weights were still moving. Weights, the RNG and
    the model's mode are left as they were. Returns the number of batches used."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        handle = getattr(m, "_warm_handle", None)
        if handle is not None:
            handle.remove()
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    count = 0
    with torch.random.fork_rng(devices=[]):
        for batch in batches:
            forward(batch)
            count += 1
    model.train(was_training)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = getattr(m, "_warm_base_momentum", momentum)
    return count
