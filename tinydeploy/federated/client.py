"""The Flower ClientApp: one microcontroller-class device of the fleet.

A device answers a query with who it is (device index, profile, samples), and a train message
by training the global model on its own data (``mlp.fit``), encoding the change
(``encoding.encode``, with error feedback kept in the node's Flower context across rounds) and
replying with the encoded arrays and its sample count.

Its data: ``<data-dir>/device-<index>.npz`` (arrays x, y, profile) where ``data-dir`` comes
with the message (the simulation writes the partitions there); a SuperNode of the deployment
runtime names its own file with ``--node-config 'data-path="..."'``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from tinydeploy.federated import encoding, mlp
from tinydeploy.federated.wire import from_record, to_record

app = ClientApp()
_DATA: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}      # per actor: files already read


def device_file(data_dir: str | Path, index: int) -> Path:
    return Path(data_dir) / f"device-{index:04d}.npz"


def _data_path(msg: Message, context: Context) -> str:
    own = context.node_config.get("data-path")
    if own:
        return str(own)
    return str(device_file(msg.content["config"]["data-dir"], int(context.node_config["partition-id"])))


def _load(path: str) -> tuple[np.ndarray, np.ndarray, str]:
    if path not in _DATA:
        with np.load(path) as f:
            _DATA[path] = (f["x"], f["y"].astype(np.int64), str(f["profile"]))
    return _DATA[path]


def _index(path: str) -> int:
    return int(Path(path).stem.rsplit("-", 1)[1])


def without_tensorflow() -> None:
    """Ray worker set-up: the clients train in NumPy, so TensorFlow stays out of the workers (Flower's
    Ray transport imports it when it is installed, which costs every actor seconds and memory)."""
    import sys
    sys.modules.setdefault("tensorflow", None)       # `import tensorflow` now raises ModuleNotFoundError


@app.query()
def describe(msg: Message, context: Context) -> Message:
    """Who this device is: its index, profile and number of samples."""
    path = _data_path(msg, context)
    x, _, profile = _load(path)
    metrics = MetricRecord({"device": _index(path), "num-examples": len(x)})
    return Message(RecordDict({"metrics": metrics, "config": ConfigRecord({"profile": profile})}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Local training from the global weights; the reply is the encoded update."""
    cfg = msg.content["config"]
    path = _data_path(msg, context)
    x, y, _ = _load(path)
    device = _index(path)
    start = from_record(msg.content["arrays"])
    seed = int(cfg["seed"]) * 1_000_003 + int(cfg["server-round"]) * 1009 + device
    trained = mlp.fit(start, x, y, int(cfg["local-epochs"]), seed, float(cfg["lr"]), int(cfg["batch"]))
    loss, _ = mlp.evaluate(trained, x, y)
    delta = {k: trained[k] - start[k] for k in start}
    enc = encoding.Encoding(int(cfg["bits"]), float(cfg["topk"]), bool(cfg["stochastic"]))
    key = f"residual-{cfg['tag']}"
    residual = from_record(context.state[key]) if key in context.state.array_records else None
    wire, residual = encoding.encode(delta, enc, residual, np.random.default_rng(seed))
    if residual is not None:
        context.state[key] = to_record(residual)
    metrics = MetricRecord({"num-examples": len(x), "device": device, "train-loss": loss,
                            "bytes-up": encoding.payload_bytes(wire)})
    return Message(RecordDict({"arrays": to_record(wire), "metrics": metrics}), reply_to=msg)
