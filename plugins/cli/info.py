"""`chromaflow info`: versions, devices, model cache and shared data, as text or JSON."""

import argparse
import importlib
import json
import platform
import sys
from typing import Any

from chromaflow import __version__
from chromaflow.core import paths


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:
        return None
    if module == "vapoursynth":
        return f"R{mod.core.core_version.release_major}"
    return str(getattr(mod, "__version__", "unknown"))


def _devices() -> list[dict[str, Any]]:
    import torch

    found: list[dict[str, Any]] = [{"device": "cpu", "name": platform.processor() or platform.machine()}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            found.append(
                {
                    "device": f"cuda:{i}",
                    "name": props.name,
                    "memory_gib": round(props.total_memory / 2**30, 1),
                }
            )
    return found


def _models() -> list[dict[str, Any]]:
    from chromaflow.core import registry

    report = []
    for name in registry.names():
        path = registry.cached_path(name)
        present = path.is_file()
        report.append(
            {
                "name": name,
                "present": present,
                "path": str(path) if present else None,
                "bytes": path.stat().st_size if present else None,
            }
        )
    return report


def collect() -> dict[str, Any]:
    """Everything `info` reports, as a dictionary."""
    import torch

    from chromaflow.filters.pyav.hardware import hardware_encoders

    return {
        "chromaflow": __version__,
        "python": sys.version.split()[0],
        "versions": {
            name: _version(name) for name in ("torch", "numpy", "av", "vapoursynth", "numba", "cv2", "h5py")
        },
        "torch_cuda_build": torch.version.cuda,
        "devices": _devices(),
        "model_cache": str(paths.models_dir()),
        "models": _models(),
        "shared_data": str(paths.shared_dir()) if paths.shared_dir().is_dir() else None,
        "hardware_encoders": hardware_encoders(),
    }


def run(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"chromaflow {report['chromaflow']} on Python {report['python']}")
    for name, version in report["versions"].items():
        print(f"  {name:<12} {version or 'not installed'}")
    print(f"  CUDA build   {report['torch_cuda_build'] or 'none'}")
    print("devices:")
    for dev in report["devices"]:
        extra = f", {dev['memory_gib']} GiB" if "memory_gib" in dev else ""
        print(f"  {dev['device']:<8} {dev['name']}{extra}")
    print(f"model cache: {report['model_cache']}")
    for m in report["models"]:
        state = f"present ({m['bytes'] / 2**20:.1f} MiB)" if m["present"] else "absent"
        print(f"  {m['name']:<20} {state}")
    print(f"shared data: {report['shared_data'] or 'not found (set CHROMAFLOW_SHARED)'}")
    print("hardware encoders:")
    for enc in report["hardware_encoders"]:
        state = "opens" if enc["opens"] else f"not usable: {enc['reason']}"
        print(f"  {enc['encoder']:<12} {state}; fallback {enc['fallback']}")
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "info", help="show versions, devices, the model cache and which models are present"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.set_defaults(func=run)
