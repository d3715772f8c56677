"""The Flower ServerApp: asks every device who it is, then runs the hierarchical FedAvg once per
update encoding (the same fleet, the same starting weights), evaluating the global model on the
test split after every round, and writes ``<out>/flower/<tag>.npz`` (the final global weights)
and ``<out>/flower/history.json`` (the rounds) for the shipping stage.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp

from tinydeploy.federated import encoding, mlp
from tinydeploy.federated.strategy import Fleet, HierarchicalFedAvg, RoundRecord
from tinydeploy.federated.wire import from_record, to_record

QUERY_TIMEOUT_S = 600.0
NODE_WAIT_S = 600.0
NODE_POLL_S = 0.2


@dataclass
class Plan:
    """Everything the ServerApp runs: the fleet, the encodings, the training settings."""
    fleet: Fleet
    encodings: list[encoding.Encoding]
    rounds: int
    initial: dict[str, np.ndarray]
    x_test: np.ndarray
    y_test: np.ndarray
    data_dir: Path
    out_dir: Path
    local_epochs: int
    lr: float
    batch: int
    seed: int
    momentum: float = 0.0
    select: str = "all"
    deadline_s: float | None = None
    on_round: Callable[[str, RoundRecord], None] | None = None
    results: dict = field(default_factory=dict)      # filled in: tag -> (final weights, history)


def _wait_for_nodes(grid: Grid, count: int) -> list[int]:
    deadline = time.monotonic() + NODE_WAIT_S
    while True:
        nodes = list(grid.get_node_ids())
        if len(nodes) >= count or time.monotonic() > deadline:
            return nodes
        time.sleep(NODE_POLL_S)


def discover(grid: Grid, plan: Plan) -> None:
    """Ask every node which device it is; fills ``plan.fleet.nodes`` (device index -> node id)."""
    nodes = _wait_for_nodes(grid, len(plan.fleet.devices))
    config = ConfigRecord({"data-dir": str(plan.data_dir)})
    queries = [Message(RecordDict({"config": config}), message_type=MessageType.QUERY, dst_node_id=n) for n in nodes]
    for reply in grid.send_and_receive(queries, timeout=QUERY_TIMEOUT_S):
        if reply.has_error():
            continue
        device = int(reply.content["metrics"]["device"])
        plan.fleet.nodes[device] = reply.metadata.src_node_id


def run(grid: Grid, plan: Plan) -> None:
    """Discovery, then one federated run per encoding; results into ``plan.results`` and ``plan.out_dir``."""
    discover(grid, plan)
    out = Path(plan.out_dir) / "flower"
    out.mkdir(parents=True, exist_ok=True)
    histories = {}
    for enc in plan.encodings:
        tag = enc.tag
        strategy = HierarchicalFedAvg(plan.fleet, enc, plan.local_epochs, plan.select, plan.deadline_s,
                                      on_round=(lambda r, tag=tag: plan.on_round(tag, r)) if plan.on_round else None,
                                      train_config={"lr": plan.lr, "batch": plan.batch, "seed": plan.seed,
                                                    "tag": tag, "data-dir": str(plan.data_dir)},
                                      momentum=plan.momentum)

        def evaluate(server_round: int, arrays, strategy=strategy) -> MetricRecord:
            loss, accuracy = mlp.evaluate(from_record(arrays), plan.x_test, plan.y_test)
            strategy.evaluated(server_round, loss, accuracy)
            return MetricRecord({"loss": loss, "accuracy": accuracy})

        result = strategy.start(grid=grid, initial_arrays=to_record(plan.initial), num_rounds=plan.rounds,
                                evaluate_fn=evaluate)
        final = from_record(result.arrays) if result.arrays is not None else dict(plan.initial)
        np.savez(out / f"{tag}.npz", **{k.replace("/", "__"): v for k, v in final.items()})
        plan.results[tag] = (final, strategy.history)
        histories[tag] = [asdict(r) for r in strategy.history]
    (out / "history.json").write_text(json.dumps(histories, indent=1) + "\n")


def make_app(plan: Plan) -> ServerApp:
    """A ServerApp that runs ``plan`` (the simulation builds the plan in the calling process)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run(grid, plan)

    return app
