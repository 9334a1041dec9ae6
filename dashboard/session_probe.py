"""A session's probe of its decoder (and untrained control) and its band occlusion.

:class:`SessionProbe` holds methods of :class:`dashboard.state.Session` (which inherits
them; it reads and sets the session's parameters), kept apart by topic.
"""
from __future__ import annotations

import logging
import time

from core._validation import UnitScopeError

__all__ = ["SessionProbe"]

logger = logging.getLogger(__name__)


class SessionProbe:
    """Methods of :class:`dashboard.state.Session` (a mixin: see the module notes)."""

    # ---- probing ---------------------------------------------------------------------------
    def run_probe(self, *, config=None, control: bool | None = None) -> None:
        """Probe the decoder (and then an untrained twin) in a worker thread; resumes a stopped run."""
        dec = self.decoder
        if dec is None:
            self.alert(self.no_decoder_note())
            return
        if self.running("probe"):
            self.alert("The probe is already running.", "warning")
            return
        from core.probing.pipeline import ProbeConfig, start_probe, untrained_twin
        import copy

        try:  # (bands within the run's band-pass, where it has one: Workspace.probe_bands)
            cfg = config or ProbeConfig(n_iterations=int(self.probe_iterations), site=self.probe_site,
                                        bands=dec.ws.probe_bands())
        except UnitScopeError as exc:
            self.alert(str(exc))
            return
        control = self.probe_control if control is None else control
        run0 = self._probe_run
        resume = run0 if (run0 is not None and self._probe_run_decoder is dec and not run0.finished
                          and self.probe_state == "stopped" and self.probe is not None
                          and self.probe.attrs.get("site", "conv") == cfg.site) else None
        self.probe_state = "running"
        if resume is None:
            self.param.update(probe=None, control=None, probe_progress=0.0, probe_source="run in this session")

        def work(stop):
            run = resume
            if run is None:
                X, y = dec.probe_inputs()
                model = copy.deepcopy(dec.ws.model).eval()  # hooks never touch a shared model
                run = start_probe(model, X, sfreq=dec.sfreq, config=cfg, y=y, task=dec.task, ch_names=dec.ch_names)
                self._probe_run, self._probe_run_decoder = run, dec
            share = 0.7 if control else 1.0  # [A] the control takes the rest of the bar
            last = [0.0]

            def progress(frac):
                if stop.is_set():
                    run.stop()
                now = time.monotonic()
                if dec is not self.decoder or self._gone():  # (the page went: nothing is drawn)
                    run.stop()
                    return
                if now - last[0] > self.probe_interval or frac >= 1:
                    last[0] = now
                    self._set_for(dec, probe_progress=share * frac, probe=self._kept(run))
                else:
                    self._set_for(dec, probe_progress=share * frac)

            run.run(progress=progress)
            if not self._set_for(dec, probe=self._kept(run)):
                return None
            if not run.finished:
                return "stopped"
            if control and not stop.is_set():
                twin = untrained_twin(dec.ws.model)
                X, y = dec.probe_inputs()
                crun = start_probe(twin, X, sfreq=dec.sfreq, config=cfg, y=y, task=dec.task, ch_names=dec.ch_names)
                self._control_run = crun

                def cprogress(frac):
                    if stop.is_set() or dec is not self.decoder or self._gone():
                        crun.stop()
                        return
                    self._set_for(dec, probe_progress=share + (1 - share) * frac)

                crun.run(progress=cprogress)
                if crun.finished:
                    self._set_for(dec, control=self._kept(crun))
            return "done"  # the decoder's probe is complete (a stopped control is simply absent)

        def done(state):
            if state is not None:
                self._set_for(dec, probe_state=state, **({"probe_progress": 1.0} if state == "done" else {}))

        self._start("probe", work, on_done=done, on_error=lambda m: self._set_for(dec, probe_state="error"))

    def _kept(self, run):
        """A probe run's result as the session keeps it: maps in 1 Hz bins when the full maps
        would pass :attr:`probe_maps_limit_mb` (``attrs["maps_binned_hz"]`` says so; made
        without the full maps in memory), else as computed."""
        from core.probing.pipeline import finish, maps_mb

        return finish(run, map_bin=1.0 if maps_mb(run) > self.probe_maps_limit_mb else None)

    def stop_probe(self) -> None:
        job = self._jobs.get("probe")
        if job is not None and job.running:
            job.stop()
        if self._probe_run is not None:
            self._probe_run.stop()

    # ---- band occlusion ------------------------------------------------------------------
    def occlusion_presets(self) -> dict:
        """``{role: (channel names, (lo, hi) Hz)}`` from the decoder's channel roles (the demo);
        empty for recordings without roles."""
        from core.probing.validity import role_cases

        dec = self.decoder
        if dec is None:
            return {}
        names = dec.ch_names
        return {role: ([names[i] for i in idx], band)
                for role, (idx, band) in role_cases(dec.ws.recording.signals).items()}

    def occlude(self, cases: dict) -> None:
        """Re-measure the test block with bands removed from channels, in a worker thread.

        ``cases``: ``{label: (channel names, (lo, hi) Hz or None for the whole channels)}``.
        Each result is put first in :attr:`occlusions`: label, channels, band, metric without
        the band, reference metric and the drop. Bad input is an alert; nothing is lost.
        """
        from core.probing.validity import band_occlusions, named_cases

        from .queue import work_queue

        dec = self.decoder
        if dec is None:
            self.alert(self.no_decoder_note())
            return
        if self.running("occlusion"):
            self.alert("A band occlusion is already running.", "warning")
            return
        try:
            idx_cases = named_cases(dec.ch_names, cases)
        except UnitScopeError as exc:
            self.alert(f"Band occlusion: {exc}")
            return
        self.occluding = True

        def work(stop):
            with work_queue().slot(kind="long", label="band occlusion", owner=self, stop=stop):
                X, y = dec.ws.eval_set("test")
                return band_occlusions(dec.ws.model, X, y, sfreq=dec.sfreq, cases=idx_cases, task=dec.task)

        def done(out):
            self.occluding = False
            occluded, reference = out
            rows = [dict(label=label, channels=list(cases[label][0]), band=cases[label][1], metric=occluded[label],
                         reference=reference, drop=reference - occluded[label]) for label in cases]
            with self._decoder_lock:  # (another decoder set meanwhile: its list stays empty)
                self._set_for(dec, occlusions=(rows + self.occlusions)[:12])

        self._start("occlusion", work, on_done=done, on_error=lambda m: setattr(self, "occluding", False))

    _probe_run_decoder = None
    _control_run = None
    _activations_of = None  # the decoder whose most-activating windows the "activations" job computes
