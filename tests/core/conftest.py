"""Fixtures of the core tests."""
from __future__ import annotations

import pytest


@pytest.fixture()
def interrupt_at_epoch(monkeypatch):
    """``interrupt_at_epoch(n)``: the next trainings (``core.workspace.train``) get a Ctrl-C
    (KeyboardInterrupt) as their ``n``-th epoch ends, after its checkpoint is written."""
    from core import workspace

    real = workspace.train

    def arm(n: int) -> None:
        def train(model, data, config, *, progress=None, **kw):
            ends = []

            def hook(p):
                if progress is not None:
                    progress(p)
                if p.get("end_of_epoch"):
                    ends.append(p)
                    if len(ends) == n:
                        raise KeyboardInterrupt

            return real(model, data, config, progress=hook, **kw)

        monkeypatch.setattr(workspace, "train", train)

    return arm
