"""The same apps on Flower's deployment runtime (SuperLink + SuperNodes on separate machines).

``server_app`` reads its settings from the run config (``resources/federated/app/pyproject.toml``,
``[tool.flwr.app.config]``, or ``flwr run --run-config``): ``fleet`` is the ``federated.json`` of a
``tinydeploy federate`` run, which names every device's profile and board and carries the figures
the boards' firmware measured; the clients are ``tinydeploy.federated.client:app``, each SuperNode
started with ``--node-config 'data-path="device-0007.npz"'``. The final weights and the rounds go
to ``<out-dir>/flower/`` as in the simulation.
"""
from __future__ import annotations

import json
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from tinydeploy.federated import encoding, mlp, profiles, server
from tinydeploy.federated.costs import BoardFigures
from tinydeploy.federated.strategy import Fleet

server_app = ServerApp()


def plan_from(config: dict) -> server.Plan:
    """The Plan a run config describes (see the module docstring)."""
    from tinydeploy.ml import data as data_mod
    record = json.loads(Path(str(config["fleet"])).read_text())
    settings = record["settings"]
    by_name = {p.name: p for p in profiles.load().profiles}
    chosen = [by_name[n] for n in settings["profiles"]]
    devices = profiles.fleet(chosen, settings["devices"], settings["gateways"])
    figures = {b["board"]: BoardFigures(**{k: v for k, v in b.items() if k != "instructions_per_mac"})
               for b in record["boards"]}
    samples = {d["device"]: d["samples"] for d in record["fleet"]}
    fog = settings.get("fog") or 0
    fleet = Fleet(devices, figures, samples,
                  fog_of_gateway=[g * fog // settings["gateways"] for g in range(settings["gateways"])] if fog else None)
    ds = data_mod.load(settings["dataset"], settings.get("label"))
    enc = encoding.Encoding(int(config.get("update-bits", 8)), float(config.get("topk", 0.0)))
    return server.Plan(fleet, [enc], int(config.get("rounds", settings["rounds"])),
                       mlp.init_weights(ds.num_features, len(ds.classes), tuple(settings["hidden"]), settings["seed"]),
                       ds.x_test, ds.y_test, Path(str(config.get("data-dir", "."))), Path(str(config["out-dir"])),
                       int(config.get("local-epochs", settings["local_epochs"])), settings["lr"], settings["batch"],
                       settings["seed"], float(config.get("server-momentum", settings["server_momentum"])))


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    server.run(grid, plan_from(dict(context.run_config)))
