"""Federated learning across a fleet of microcontrollers, on Flower (simulated on Ray, deployable with
Flower's SuperLink/SuperNodes), shipped as verified int8 firmware for every device's board.

One module per concern: ``profiles`` (device profiles: board, battery, link), ``partition`` (IID and
Dirichlet label splits), ``encoding`` (quantized and top-k updates with error feedback),
``hierarchy`` (sample-weighted averages over devices -> gateways [-> fog] -> cloud), ``mlp`` (the
clients' NumPy learner), ``costs`` (estimated device time and energy from measured figures),
``client`` / ``server`` (the Flower ClientApp and ServerApp, ``strategy`` their FedAvg subclass,
``wire`` arrays to Flower records, ``deploy`` the ServerApp for Flower's deployment runtime), ``run``
(the `tinydeploy federate` pipeline) and ``report`` (tables, figure, JSON). Flower is imported by
``client``, ``server``, ``strategy``, ``wire`` and ``deploy``, and by ``run`` inside its functions.
"""
