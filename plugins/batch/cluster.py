"""Ray for a batch: an embedded local Ray by default, or an existing cluster by address.

Ray is an optional extra (``pip install chromaflow[batch]``); without it the batch verb says so and exits 2.
"""

import importlib
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from chromaflow.core.errors import UsageError

LOCAL = "local"
INSTALL_HINT = "chromaflow batch runs on Ray, which is not installed: pip install chromaflow[batch]"


def require_ray() -> ModuleType:
    """The ``ray`` module, or :class:`UsageError` saying how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError as err:
        raise UsageError(INSTALL_HINT) from err


@dataclass
class RaySession:
    """The Ray a batch runs on; :meth:`close` shuts it down only if this session started it."""

    ray: ModuleType
    started: bool
    address: str

    def resources(self) -> dict[str, float]:
        return dict(self.ray.cluster_resources())

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()


def connect(address: str, num_cpus: int, num_gpus: float | None) -> RaySession:
    """Join the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) or, for ``local``, start
    an embedded Ray with ``num_cpus`` CPUs (no dashboard, its logs kept off stderr). A Ray this process already
    runs is used as it is."""
    ray = require_ray()
    if ray.is_initialized():
        return RaySession(ray, False, "existing")
    # the workers import chromaflow as this process does (an editable install, a source tree on the path)
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "log_to_driver": bool(os.environ.get("CHROMAFLOW_RAY_LOGS")),
        "configure_logging": True,
    }
    try:
        if address == LOCAL:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **options)
        else:
            options.pop("include_dashboard")
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise UsageError(
            f"cannot start or reach Ray at {address!r}: {err}; start a cluster with `ray start --head` "
            "or leave out --ray for a local one"
        ) from err
    return RaySession(ray, True, address)
