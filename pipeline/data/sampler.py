"""Identity samplers: every batch holds P identities × K clips (paper: 8 × 4), so the batch-hard
triplet loss always finds positives and negatives.

An epoch's batches depend only on (seed, epoch) — never on earlier epochs or global RNG state — so
a resumed run replays exactly the batches an uninterrupted run would see. Each item is
`(tracklet index, clip seed)`: the dataset draws the clip start and the flip from that seed, so
clips are reproducible too, whatever the number of DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class IdentitySampler(Sampler):
    """P identities × K tracklets per batch, as torchreid's RandomIdentitySampler: each identity's
    tracklets are shuffled and cut into groups of K (an identity with fewer than K is sampled
    with replacement); batches take one group from each of P random identities until fewer than
    P identities have groups left. Call `set_epoch(epoch)` before iterating."""

    def __init__(self, pids: Sequence[int], ids_per_batch: int, clips_per_id: int, seed: int = 0):
        super().__init__()
        self.ids_per_batch = int(ids_per_batch)
        self.clips_per_id = int(clips_per_id)
        self.seed = int(seed)
        self.epoch = 0
        self.index_by_pid: dict[int, list[int]] = {}
        for index, pid in enumerate(pids):
            self.index_by_pid.setdefault(int(pid), []).append(index)
        if self.ids_per_batch < 1 or self.clips_per_id < 1:
            raise ValueError("ids_per_batch and clips_per_id must be ≥ 1")
        if len(self.index_by_pid) < self.ids_per_batch:
            raise ValueError(
                f"{len(self.index_by_pid)} identities cannot fill batches of "
                f"{self.ids_per_batch} identities"
            )

    @property
    def batch_size(self) -> int:
        return self.ids_per_batch * self.clips_per_id

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])

    def batches(self, epoch: int) -> list[list[tuple[int, int]]]:
        """The epoch's batches of (tracklet index, clip seed); a pure function of (seed, epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        k = self.clips_per_id
        groups: dict[int, list[list[int]]] = {}
        for pid in sorted(self.index_by_pid):
            indices = self.index_by_pid[pid]
            chosen = (
                rng.choice(indices, size=k, replace=True)
                if len(indices) < k
                else rng.permutation(indices)
            ).tolist()
            groups[pid] = [chosen[i : i + k] for i in range(0, len(chosen) - k + 1, k)]
        available = sorted(groups)
        batches = []
        while len(available) >= self.ids_per_batch:
            chosen_pids = rng.choice(available, size=self.ids_per_batch, replace=False).tolist()
            members = [index for pid in chosen_pids for index in groups[pid].pop(0)]
            seeds = rng.integers(0, 2**31 - 1, size=len(members)).tolist()
            batches.append(list(zip(members, seeds, strict=True)))
            available = [pid for pid in available if groups[pid]]
        return batches

    def _my_batches(self) -> list[list[tuple[int, int]]]:
        return self.batches(self.epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for batch in self._my_batches():
            yield from batch

    def __len__(self) -> int:
        return sum(len(batch) for batch in self._my_batches())


class DistributedIdentitySampler(IdentitySampler):
    """The same global batch list on every process; process `rank` of `num_replicas` takes
    batches rank, rank + N, … (the list is cut to a multiple of N so all processes step equally),
    so every local batch keeps the P × K structure."""

    def __init__(
        self,
        pids: Sequence[int],
        ids_per_batch: int,
        clips_per_id: int,
        num_replicas: int,
        rank: int,
        seed: int = 0,
    ):
        super().__init__(pids, ids_per_batch, clips_per_id, seed)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.num_replicas, self.rank = int(num_replicas), int(rank)

    def _my_batches(self) -> list[list[tuple[int, int]]]:
        batches = self.batches(self.epoch)
        usable = len(batches) - len(batches) % self.num_replicas
        return batches[self.rank : usable : self.num_replicas]
