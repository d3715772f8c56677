"""Which model variant to deploy on a board: the one with the lowest multi-objective cost.

Among the variants that ran bit-exact (0 mismatches) and fit the board's flash and RAM, each
gets a cost, a weighted sum of four terms, each normalised among those candidates:

    cost = w_accuracy * (a_best - a) / max(1 - a_best, 0.01)     accuracy loss
         + w_latency  * t / t_max                                 latency
         + w_flash    * f / f_max                                 size
         + w_energy   * e / e_max                                 energy

- ``a`` is the firmware's int8 accuracy on the test vectors and ``a_best`` the best candidate's:
  the accuracy term is the extra error as a share of the best error rate (0: as accurate as
  the best; 1: the error rate doubled). The floor of 0.01 keeps a perfect model from dividing by 0.
- ``t`` is the estimated time per inference (QEMU -icount instructions at 1 instruction per
  cycle at the board's clock), ``f`` the flash the deployment needs (code + weights, test
  vectors left out) and ``e`` the estimated energy per inference (active power x ``t``); each is
  divided by the largest among the candidates, so 1 is the largest and 0.5 half of it.
- A term whose figure is unknown for a candidate (no power figure for the board, no
  instruction count) counts 0 for every candidate on that board.

On one board ``e`` is proportional to ``t`` (one power figure per board), so the energy weight
adds to the latency weight there; it matters when weights are compared across boards.
The lowest cost wins; ties go to the more accurate, then the smaller, then the first name.
The weights are the user's (``--weights accuracy=1,latency=0.3,flash=0.3,energy=0.3``, the
defaults); a weight of 0 ignores its term.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from tinydeploy.core.errors import BadInput

ERROR_FLOOR = 0.01
TERMS = ("accuracy", "latency", "flash", "energy")
FORMULA = ("cost = w_accuracy*(a_best-a)/max(1-a_best, 0.01) + w_latency*t/t_max + w_flash*f/f_max + "
           "w_energy*e/e_max over the variants that fit the board and ran bit-exact; a: firmware int8 accuracy, "
           "t: estimated ms per inference, f: flash without test vectors (code + weights), e: estimated uJ "
           "per inference; lowest cost wins")


@dataclass(frozen=True)
class CostWeights:
    """How much each normalised term counts (see the module's docstring); all >= 0, not all 0."""
    accuracy: float = 1.0
    latency: float = 0.3
    flash: float = 0.3
    energy: float = 0.3

    @classmethod
    def parse(cls, text: str | None) -> CostWeights:
        """``"accuracy=1,latency=0.5"``: keys not given keep their defaults; one BadInput line on a bad one."""
        if text is None or not text.strip():
            return cls()
        values = dataclasses.asdict(cls())
        for item in text.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in values:
                raise BadInput(f"--weights: '{item.strip()}' is not KEY=NUMBER with KEY one of {', '.join(TERMS)} "
                               "(e.g. --weights accuracy=1,latency=0.3,flash=0.3,energy=0.3)")
            try:
                number = float(value)
            except ValueError:
                raise BadInput(f"--weights: {key}={value.strip()!r} is not a number") from None
            if not math.isfinite(number) or number < 0:
                raise BadInput(f"--weights: {key}={value.strip()} must be a finite number >= 0")
            values[key] = number
        weights = cls(**values)
        if not any(values.values()):
            raise BadInput("--weights: every weight is 0; give at least one term a positive weight")
        return weights

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self.as_dict().items())


@dataclass(frozen=True)
class Candidate:
    """One variant on one board, as the cost sees it."""
    name: str
    accuracy: float | None           # firmware int8 accuracy (0..1)
    latency_ms: float | None         # estimated time per inference
    flash_bytes: int | None          # flash without test vectors
    energy_uj: float | None          # estimated energy per inference
    fits: bool = True                # fits the board's flash and RAM
    verified: bool = True            # ran with 0 mismatches
    why_not: str | None = None       # why it is not a candidate (does not fit, mismatches, not built)

    @property
    def eligible(self) -> bool:
        return self.fits and self.verified and self.accuracy is not None


@dataclass
class Recommendation:
    """The variant to deploy on ``board`` (None when none is eligible) and why, in one sentence."""
    board: str
    variant: str | None
    cost: float | None
    reason: str
    costs: dict[str, float] = field(default_factory=dict)             # every eligible variant's cost
    terms: dict[str, dict[str, float]] = field(default_factory=dict)  # per variant, each weighted term
    excluded: dict[str, str] = field(default_factory=dict)            # variant -> why it was not considered

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _ratio(value: float | None, largest: float | None) -> float:
    if value is None or not largest:
        return 0.0
    return value / largest


def costs(candidates: list[Candidate], weights: CostWeights) -> dict[str, dict[str, float]]:
    """Per eligible candidate: each weighted term and their sum ("total"), normalised among them."""
    pool = [c for c in candidates if c.eligible]
    if not pool:
        return {}
    best = max(c.accuracy for c in pool)
    error = max(1.0 - best, ERROR_FLOOR)

    def largest(figure: str) -> float | None:
        values = [getattr(c, figure) for c in pool]
        return None if any(v is None for v in values) else max(values)     # unknown for one: the term counts 0
    t_max, f_max, e_max = largest("latency_ms"), largest("flash_bytes"), largest("energy_uj")
    out = {}
    for c in pool:
        terms = {
            "accuracy": weights.accuracy * (best - c.accuracy) / error,
            "latency": weights.latency * (_ratio(c.latency_ms, t_max) if t_max else 0.0),
            "flash": weights.flash * (_ratio(c.flash_bytes, f_max) if f_max else 0.0),
            "energy": weights.energy * (_ratio(c.energy_uj, e_max) if e_max else 0.0),
        }
        terms["total"] = sum(terms.values())
        out[c.name] = terms
    return out


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f} KB"


def recommend(board: str, candidates: list[Candidate], weights: CostWeights) -> Recommendation:
    """The lowest-cost eligible candidate on ``board``, with one sentence saying why."""
    table = costs(candidates, weights)
    excluded = {c.name: c.why_not or ("does not fit" if not c.fits else "not verified")
                for c in candidates if not c.eligible}
    if not table:
        detail = "; ".join(f"{name}: {why}" for name, why in excluded.items()) or "no variant was given"
        return Recommendation(board, None, None, f"No variant can be recommended for {board}: {detail}.",
                              excluded=excluded)
    by_name = {c.name: c for c in candidates}
    order = sorted(table, key=lambda n: (round(table[n]["total"], 12), -by_name[n].accuracy,
                                         by_name[n].flash_bytes or 0, list(by_name).index(n)))
    winner = by_name[order[0]]
    most_accurate = max((by_name[n] for n in table), key=lambda c: c.accuracy)
    if winner.name == most_accurate.name:
        accuracy = f"the best firmware accuracy ({100 * winner.accuracy:.1f}%)"
    else:
        accuracy = (f"firmware accuracy {100 * winner.accuracy:.1f}% "
                    f"({100 * (winner.accuracy - most_accurate.accuracy):+.1f} points vs {most_accurate.name})")
    latency = "" if winner.latency_ms is None else f", {winner.latency_ms:.3f} ms estimated per inference"
    others = f"{len(table)} variants that fit and ran bit-exact" if len(table) > 1 else \
        "the only variant that fits and ran bit-exact"
    left_out = f"; {len(excluded)} left out ({', '.join(excluded)})" if excluded else ""
    reason = (f"{winner.name} has the lowest cost ({table[winner.name]['total']:.3f}) of the {others} on {board}: "
              f"{accuracy}{latency}, {_kb(winner.flash_bytes)} of flash{left_out}.")
    if len(table) == 1:
        reason = (f"{winner.name} is {others} on {board} (cost {table[winner.name]['total']:.3f}): "
                  f"{accuracy}{latency}, {_kb(winner.flash_bytes)} of flash{left_out}.")
    return Recommendation(board, winner.name, table[winner.name]["total"], reason,
                          {n: t["total"] for n, t in table.items()},
                          {n: {k: v for k, v in t.items() if k != "total"} for n, t in table.items()}, excluded)
