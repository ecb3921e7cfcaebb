"""Under-used checkpoints: far fewer declarations than peers of the same kind in the ward.

The inspection's third finding was that too few people declared. For one day, a
checkpoint is *under-used* when

    declarations < ratio * median(declarations of its peers)

where its peers are the other checkpoints of the same ``kind`` in the same ward; it needs
at least ``min_peers`` peers and a peer median of at least ``min_peer_median`` (otherwise
there is no meaningful norm to fall short of). A checkpoint with no declaration that day
counts 0. Defaults: ratio 0.25, 2 peers, median 10.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CheckpointDay", "UnderUse", "under_used"]


@dataclass(frozen=True, slots=True)
class CheckpointDay:
    checkpoint_id: str
    ward_code: str
    kind: str
    declarations: int


@dataclass(frozen=True, slots=True)
class UnderUse:
    checkpoint_id: str
    ward_code: str
    kind: str
    declarations: int
    peer_median: float
    peers: int


def under_used(days: Iterable[CheckpointDay], *, ratio: float = 0.25, min_peers: int = 2,
               min_peer_median: float = 10.0) -> list[UnderUse]:
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must be within (0, 1), got {ratio}")
    if min_peers < 1:
        raise ValueError(f"min_peers must be >= 1, got {min_peers}")
    groups: dict[tuple[str, str], list[CheckpointDay]] = defaultdict(list)
    for day in days:
        groups[(day.ward_code, day.kind)].append(day)
    out = []
    for members in groups.values():
        for day in members:
            peers = [m.declarations for m in members if m.checkpoint_id != day.checkpoint_id]
            if len(peers) < min_peers:
                continue
            median = statistics.median(peers)
            if median >= min_peer_median and day.declarations < ratio * median:
                out.append(UnderUse(day.checkpoint_id, day.ward_code, day.kind,
                                    day.declarations, float(median), len(peers)))
    return sorted(out, key=lambda u: (u.ward_code, u.kind, u.declarations / u.peer_median))
