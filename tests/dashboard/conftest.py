"""Fixtures of the dashboard tests: a small untrained decoder, a real (short) probe result,
and a demo cache folder holding a small decoder so the app starts in seconds."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def _extensions():
    """Panel/HoloViews extensions and torch threads, as the app sets them once per process."""
    from dashboard.app import configure_process

    configure_process()


@pytest.fixture(scope="session")
def tiny_ws():
    """A Deep4 workspace on 60 s of the demo (untrained: tests check wiring, not accuracy)."""
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    return Workspace.create(DataSpec(duration=60.0), TrainConfig(max_epochs=1))


@pytest.fixture(scope="session")
def tiny_decoder(tiny_ws):
    from dashboard.decoder import Decoder

    return Decoder(tiny_ws, label="tiny demo")


@pytest.fixture(scope="session")
def tiny_probe(tiny_decoder):
    """A real probe result of the tiny decoder (2 iterations, classified)."""
    import copy

    from core.probing.pipeline import ProbeConfig, finish, start_probe

    X, y = tiny_decoder.probe_inputs()
    run = start_probe(copy.deepcopy(tiny_decoder.ws.model).eval(), X, sfreq=tiny_decoder.sfreq,
                      config=ProbeConfig(n_iterations=2, n_null=2), y=y, task=tiny_decoder.task,
                      ch_names=tiny_decoder.ch_names)
    run.run()
    return finish(run)


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory, tiny_ws):
    """A UNITSCOPE_CACHE folder whose demo run is the tiny workspace (no training needed)."""
    from core.workspace import DEMO_VERSION

    root = tmp_path_factory.mktemp("uscache")
    tiny_ws.save(root / f"demo-deep4-v{DEMO_VERSION}", demo_version=DEMO_VERSION)
    return root


@pytest.fixture(scope="session")
def fif():
    """``fif(path, ch_names, ...)`` writes a small FIF recording (see :func:`write_fif`)."""
    return write_fif


def write_fif(path, ch_names, *, sfreq=250.0, seconds=60.0, seed=0, misc=("speed",)):
    """A small FIF recording with the given EEG channel names plus misc target channels."""
    import mne

    rng = np.random.default_rng(seed)
    names = list(ch_names) + list(misc)
    n = int(sfreq * seconds)
    data = rng.standard_normal((len(names), n)) * 1e-5
    info = mne.create_info(names, sfreq, ["eeg"] * len(ch_names) + ["misc"] * len(misc))
    mne.io.RawArray(data, info, verbose="error").save(path, overwrite=True, verbose="error")
    return path
