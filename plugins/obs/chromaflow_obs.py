"""chromaflow for OBS Studio: colorize or deepfake-scan every recording when it stops.

Load it in Tools > Scripts from the folder ``python tools/package_hosts.py`` writes (``dist/chromaflow-obs/``: this
file, ``chromaflow_obs_logic.py`` and ``chromaflow_cli_client.py``, which this folder on ``sys.path`` lets it import).
OBS's Python only runs this thin layer; the work is done by the chromaflow command line of the environment set
below, in a background thread, with its progress in the script log. The result is written next to the recording
(or in the chosen folder).
"""

import os
import sys
from pathlib import Path

import obspython as obs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chromaflow_obs_logic as logic

_state: dict[str, object] = {"settings": logic.Settings(), "worker": None}


def _log(message: str) -> None:
    obs.script_log(obs.LOG_WARNING if "error" in message else obs.LOG_INFO, message)


def script_description() -> str:
    return (
        "<b>chromaflow</b>: when a recording stops, colorize it or scan its faces for manipulation with the "
        "chromaflow command line, in the background. The result is written next to the recording."
    )


def script_properties():  # type: ignore[no-untyped-def]
    props = obs.obs_properties_create()
    mode = obs.obs_properties_add_list(
        props, "mode", "Mode", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING
    )
    obs.obs_property_list_add_string(mode, "Colorize", "colorize")
    obs.obs_property_list_add_string(mode, "Deepfake scan", "deepfake")
    model = obs.obs_properties_add_list(
        props, "model", "Model (colorize)", obs.OBS_COMBO_TYPE_EDITABLE, obs.OBS_COMBO_FORMAT_STRING
    )  # the registry's colour models; a mix "A+B" or a weights file may be typed instead
    for name, side, _text in logic.COLOUR_MODELS:
        obs.obs_property_list_add_string(model, f"{name} ({side} px)", name)
    obs.obs_properties_add_bool(props, "overlay", "Write annotated video (deepfake)")
    classifier = obs.obs_properties_add_list(
        props, "classifier", "Classifier (deepfake)", obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING
    )
    obs.obs_property_list_add_string(classifier, "Default", "")
    for name in logic.CLASSIFIERS:
        obs.obs_property_list_add_string(classifier, name, name)
    obs.obs_properties_add_path(props, "output_dir", "Output folder (empty: next to the recording)",
                                obs.OBS_PATH_DIRECTORY, "", None)  # fmt: skip
    obs.obs_properties_add_text(
        props, "suffix", "File name suffix (empty: colorized / deepfake)", obs.OBS_TEXT_DEFAULT
    )
    obs.obs_properties_add_path(props, "cli_path", "chromaflow program (empty: on PATH)",
                                obs.OBS_PATH_FILE, "", None)  # fmt: skip
    return props


def script_defaults(settings) -> None:  # type: ignore[no-untyped-def]
    obs.obs_data_set_default_string(settings, "mode", "colorize")
    obs.obs_data_set_default_string(settings, "model", "base")
    obs.obs_data_set_default_bool(settings, "overlay", True)


def script_update(settings) -> None:  # type: ignore[no-untyped-def]
    _state["settings"] = logic.Settings(
        mode=obs.obs_data_get_string(settings, "mode") or "colorize",
        model=obs.obs_data_get_string(settings, "model"),
        output_dir=obs.obs_data_get_string(settings, "output_dir"),
        suffix=obs.obs_data_get_string(settings, "suffix"),
        cli_path=obs.obs_data_get_string(settings, "cli_path"),
        overlay=obs.obs_data_get_bool(settings, "overlay"),
        classifier=obs.obs_data_get_string(settings, "classifier"),
    )


def script_load(settings) -> None:  # type: ignore[no-untyped-def]
    _state["worker"] = logic.Worker(_log)
    obs.obs_frontend_add_event_callback(on_event)


def script_unload() -> None:
    worker = _state.get("worker")
    if isinstance(worker, logic.Worker):
        worker.stop()
    _state["worker"] = None


def last_recording() -> str:
    """The path of the recording that just stopped (OBS 29+ API, else the recording output's settings)."""
    getter = getattr(obs, "obs_frontend_get_last_recording", None)
    if getter is not None:
        path = getter()
        if path:
            return str(path)
    output = obs.obs_frontend_get_recording_output()
    data = obs.obs_output_get_settings(output)
    try:
        return obs.obs_data_get_string(data, "path") or obs.obs_data_get_string(data, "url")
    finally:
        obs.obs_data_release(data)
        obs.obs_output_release(output)


def on_event(event: int) -> None:
    if event != obs.OBS_FRONTEND_EVENT_RECORDING_STOPPED:
        return
    path = last_recording()
    worker = _state.get("worker")
    if not path or not isinstance(worker, logic.Worker):
        _log("chromaflow: error: recording stopped but its file is unknown; nothing to process")
        return
    settings = _state["settings"]
    assert isinstance(settings, logic.Settings)
    worker.submit(Path(path), settings)
