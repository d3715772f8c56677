"""Sample-weighted averaging over a tree: devices -> gateways [-> fog nodes] -> cloud.

Each tier is a weighted FedAvg of its children's updates, weighted by the samples under each
child, so the cloud's average equals the flat sample-weighted average over all devices (when
nothing is re-encoded on the way). Works on any numeric arrays, float or ``fractions.Fraction``
objects (the tests check the identity exactly).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Update = dict[str, np.ndarray]


def weighted_average(updates: Sequence[Update], weights: Sequence) -> Update:
    """sum_i w_i u_i / sum_i w_i, tensor by tensor."""
    if not updates:
        raise ValueError("no updates to average")
    total = sum(weights)
    return {name: sum(w * u[name] for u, w in zip(updates, weights)) / total for name in updates[0]}


def tier(updates: Sequence[Update], weights: Sequence, parent: Sequence[int]) -> tuple[dict[int, Update], dict[int, object]]:
    """One tier up: each parent's weighted average of its children (``parent[i]`` is child i's
    parent), and each parent's weight (its children's sum). Parents without children are absent."""
    groups: dict[int, list[int]] = {}
    for child, p in enumerate(parent):
        groups.setdefault(int(p), []).append(child)
    averages = {p: weighted_average([updates[c] for c in kids], [weights[c] for c in kids])
                for p, kids in sorted(groups.items())}
    return averages, {p: sum(weights[c] for c in kids) for p, kids in sorted(groups.items())}


def hierarchical_average(updates: Sequence[Update], weights: Sequence, parents: Sequence[Sequence[int]]) -> Update:
    """Average up every tier in ``parents`` (the first maps devices to gateways, the next gateways to
    fog nodes, ...), then across the top tier: the cloud's update."""
    current, current_w = list(updates), list(weights)
    index = list(range(len(updates)))
    for parent in parents:
        by_parent, w = tier(current, current_w, [parent[i] for i in index])
        index = list(by_parent)
        current, current_w = [by_parent[p] for p in index], [w[p] for p in index]
    return weighted_average(current, current_w)
