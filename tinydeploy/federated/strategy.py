"""The cloud's Flower strategy: FedAvg over a hierarchy (devices -> gateways [-> fog] -> cloud) with
encoded updates, device selection by fit (and optionally battery and deadline), and per-round
accounting of bytes on every link and estimated device time and energy.

Devices send encoded changes (deltas) of the global weights; each gateway decodes them and takes
their sample-weighted average and forwards it as float32 (with its sample count: a gateway's
backhaul is not the constrained link) to its fog node or the cloud, which average in turn by samples
(``hierarchy.tier``); the cloud applies the result with server momentum (FedAvgM, Hsu et al. 2019:
v = beta v + delta, weights += v; beta 0 is plain FedAvg). The downlink carries the
global weights as float32 on every hop.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from tinydeploy.federated import costs, encoding, hierarchy
from tinydeploy.federated.costs import BoardFigures
from tinydeploy.federated.profiles import Device
from tinydeploy.federated.wire import from_record, to_record

MIN_BATTERY_SHARE = 0.2            # resource-aware selection skips devices below 20% charge
UPPER_TIER = encoding.Encoding(32)   # gateways and fog nodes forward float32 aggregates


@dataclass
class RoundRecord:
    """What one round did: who trained, the bytes on each link, the global model's test figures."""
    round: int
    selected: list[int]
    bytes: dict[str, int]
    train_loss: float
    accuracy: float | None = None
    loss: float | None = None
    round_s: float | None = None            # estimate: the slowest selected device (synchronous rounds)
    device_energy_mj: float | None = None    # estimate: summed over the selected devices


@dataclass
class Fleet:
    """The devices, their boards' measured figures, their sample counts and Flower node ids."""
    devices: list[Device]
    figures: dict[str, BoardFigures]
    samples: dict[int, int]
    nodes: dict[int, int] = field(default_factory=dict)         # device index -> Flower node id
    fog_of_gateway: list[int] | None = None

    def fits(self, device: Device) -> bool:
        return self.figures[device.board.name].fits


class HierarchicalFedAvg(FedAvg):
    """Sample-weighted FedAvg at each tier of devices -> gateways [-> fog] -> cloud, on encoded updates."""

    def __init__(self, fleet: Fleet, enc: encoding.Encoding, local_epochs: int, select: str = "all",
                 deadline_s: float | None = None, on_round: Callable[[RoundRecord], None] | None = None,
                 train_config: dict | None = None, momentum: float = 0.0):
        super().__init__(fraction_evaluate=0.0, min_available_nodes=1, min_train_nodes=1)
        self.fleet, self.enc, self.local_epochs = fleet, enc, local_epochs
        self.select, self.deadline_s, self.on_round = select, deadline_s, on_round
        self.extra = dict(train_config or {})
        self.history: list[RoundRecord] = []
        self.battery_j = {d.index: d.profile.battery.joules for d in fleet.devices}
        self._global: dict[str, np.ndarray] | None = None
        self._selected: list[Device] = []
        self.momentum = momentum
        self._velocity: dict[str, np.ndarray] | None = None

    # ---- selection ----------------------------------------------------------------------------------------
    def _estimate(self, device: Device, bytes_up: int, bytes_down: int) -> costs.DeviceRound:
        return costs.device_round(device, self.fleet.figures[device.board.name], self.fleet.samples[device.index],
                                  self.local_epochs, bytes_up, bytes_down)

    def candidates(self, up_bytes: int, down_bytes: int) -> list[Device]:
        """Devices that hold the model, and under resource-aware selection have the charge and the time."""
        chosen = []
        for d in self.fleet.devices:
            if not self.fleet.fits(d) or d.index not in self.fleet.nodes:
                continue
            if self.select == "resource":
                est = self._estimate(d, up_bytes, down_bytes)
                if self.battery_j[d.index] < MIN_BATTERY_SHARE * d.profile.battery.joules:
                    continue
                if self.deadline_s is not None and est.total_s > self.deadline_s:
                    continue
            chosen.append(d)
        return chosen

    # ---- Flower's hooks ---------------------------------------------------------------------------------------
    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        self._global = from_record(arrays)
        zeros = {k: np.zeros_like(v) for k, v in self._global.items()}
        up = encoding.payload_bytes(encoding.encode(zeros, self.enc)[0])      # sizes do not depend on values
        down = encoding.payload_bytes(self._global)
        self._selected = self.candidates(up, down)
        config = ConfigRecord({**dict(config), **self.extra, "server-round": server_round, "bits": self.enc.bits,
                               "topk": self.enc.topk, "stochastic": self.enc.stochastic,
                               "local-epochs": self.local_epochs})
        record = RecordDict({"arrays": arrays, "config": config})
        return [Message(content=record, message_type=MessageType.TRAIN, dst_node_id=self.fleet.nodes[d.index])
                for d in self._selected]

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid or self._global is None:
            return None, None
        shapes = {k: v.shape for k, v in self._global.items()}
        by_device = {d.index: d for d in self.fleet.devices}
        updates, weights, gateways, up_bytes, losses, devices = [], [], [], [], [], []
        for msg in valid:
            m = msg.content["metrics"]
            wire = from_record(msg.content["arrays"])
            updates.append(encoding.decode(wire, shapes, self.enc.bits))
            weights.append(int(m["num-examples"]))
            device = by_device[int(m["device"])]
            devices.append(device)
            gateways.append(device.gateway)
            up_bytes.append(encoding.payload_bytes(wire))
            losses.append(float(m["train-loss"]))
        model_bytes = encoding.payload_bytes(self._global)
        traffic = {"device_to_gateway": sum(up_bytes), "gateway_to_device": model_bytes * len(valid)}
        # gateways: average their devices, forward densely encoded
        by_gateway, w_gateway = hierarchy.tier(updates, weights, gateways)
        forwarded, sizes = self._forward(by_gateway)
        upper = "gateway_to_fog" if self.fleet.fog_of_gateway else "gateway_to_cloud"
        traffic[upper] = sizes
        traffic[upper.replace("gateway_to_", "") + "_to_gateway"] = model_bytes * len(by_gateway)
        ids = list(forwarded)
        items, item_w = [forwarded[g] for g in ids], [w_gateway[g] for g in ids]
        if self.fleet.fog_of_gateway:
            by_fog, w_fog = hierarchy.tier(items, item_w, [self.fleet.fog_of_gateway[g] for g in ids])
            fog_forwarded, fog_sizes = self._forward(by_fog)
            traffic["fog_to_cloud"], traffic["cloud_to_fog"] = fog_sizes, model_bytes * len(by_fog)
            items, item_w = [fog_forwarded[f] for f in fog_forwarded], [w_fog[f] for f in fog_forwarded]
        delta = hierarchy.weighted_average(items, item_w)
        v = self._velocity or {k: np.zeros_like(x) for k, x in delta.items()}
        self._velocity = {k: (self.momentum * v[k] + delta[k]).astype(np.float32) for k in delta}
        new = {k: (self._global[k] + self._velocity[k]).astype(np.float32) for k in self._global}
        record = RoundRecord(server_round, sorted(d.index for d in devices), traffic,
                             float(np.average(losses, weights=weights)))
        estimates = [self._estimate(d, b, model_bytes) for d, b in zip(devices, up_bytes)]
        record.round_s = max(e.total_s for e in estimates)
        energies = [e.energy_mj for e in estimates]
        if all(e is not None for e in energies):
            record.device_energy_mj = float(sum(energies))
            for d, e in zip(devices, energies):
                self.battery_j[d.index] -= e / 1000.0
        self.history.append(record)
        metrics = MetricRecord({"train-loss": record.train_loss, "num-examples": int(sum(weights))})
        return to_record(new), metrics

    def _forward(self, aggregates: dict[int, dict[str, np.ndarray]]) -> tuple[dict[int, dict[str, np.ndarray]], int]:
        """Each aggregate as the next tier receives it (float32, dense) and the bytes sent."""
        out, total = {}, 0
        shapes = {k: v.shape for k, v in self._global.items()}
        for key, update in aggregates.items():
            wire, _ = encoding.encode(update, UPPER_TIER)
            total += encoding.payload_bytes(wire)
            out[key] = encoding.decode(wire, shapes, UPPER_TIER.bits)
        return out, total

    def evaluated(self, server_round: int, loss: float, accuracy: float) -> None:
        """The global model's test figures after ``server_round`` (the ServerApp's evaluate_fn)."""
        if self.history and self.history[-1].round == server_round:
            self.history[-1].loss, self.history[-1].accuracy = loss, accuracy
            if self.on_round:
                self.on_round(self.history[-1])
