"""Splitting the training data across devices: IID, or non-IID by Dirichlet label proportions."""
from __future__ import annotations

import numpy as np

from tinydeploy.core.errors import BadInput

MIN_SAMPLES = 2                   # a device with fewer cannot train a batch worth the name
DIRICHLET_TRIES = 100


def parse(spec: str) -> float | None:
    """"iid" -> None; "dirichlet:ALPHA" -> ALPHA (> 0)."""
    if spec == "iid":
        return None
    kind, _, value = spec.partition(":")
    try:
        alpha = float(value)
    except ValueError:
        alpha = -1.0
    if kind != "dirichlet" or not alpha > 0:
        raise BadInput(f"--partition {spec} is neither iid nor dirichlet:ALPHA with ALPHA > 0 (e.g. dirichlet:0.5)")
    return alpha


def iid(n: int, devices: int, seed: int) -> list[np.ndarray]:
    """Shuffled indices in ``devices`` nearly equal parts."""
    return [np.sort(p) for p in np.array_split(np.random.default_rng(seed).permutation(n), devices)]


def dirichlet(y: np.ndarray, devices: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Per class, the samples go to the devices in proportions drawn from Dirichlet(alpha); drawn
    again until every device holds at least MIN_SAMPLES (small alpha: few classes per device)."""
    rng = np.random.default_rng(seed)
    for _ in range(DIRICHLET_TRIES):
        parts: list[list[int]] = [[] for _ in range(devices)]
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(devices, alpha))) * len(idx)).astype(int)[:-1]
            for d, chunk in enumerate(np.split(idx, cuts)):
                parts[d].extend(chunk.tolist())
        if min(len(p) for p in parts) >= MIN_SAMPLES:
            return [np.sort(np.asarray(p, np.int64)) for p in parts]
    raise BadInput(f"--partition dirichlet:{alpha}: could not give each of {devices} devices {MIN_SAMPLES} samples "
                   f"in {DIRICHLET_TRIES} draws; use a larger alpha or fewer devices")


def split(y: np.ndarray, devices: int, spec: str, seed: int) -> list[np.ndarray]:
    """Training-sample indices per device."""
    alpha = parse(spec)
    if len(y) < devices * MIN_SAMPLES:
        raise BadInput(f"--devices {devices}: {len(y)} training samples cannot give every device {MIN_SAMPLES}")
    return iid(len(y), devices, seed) if alpha is None else dirichlet(y, devices, alpha, seed)
