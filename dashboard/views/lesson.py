"""The demo's lesson in the sidebar: four steps, each a button that opens its view with the
right layer and unit, and says what to do and what to see (README, "A lesson in four steps").

Shown while the shipped demo Deep4 is the decoder in use: the numbers in the steps are that
decoder's, measured (band occlusion, pruning curves; README). Once a step has been opened it
stays for decoders trained on the demo recording in the session (step 4 trains one, and its
last instruction is to be followed with it), with a line saying whose numbers the steps give.
"""
from __future__ import annotations

import numpy as np
import panel as pn
import param

from core.demo import ROLE_BANDS

from ..state import Session, apply_in_doc
from ._common import CSS, Shown, esc
from .units import unit_table

__all__ = ["LessonView", "STEPS"]

# (button, view, layer, what to do and what to see); layer None keeps the session's
STEP2_BAND = "{:g}-{:g}".format(*ROLE_BANDS["high_gamma"])  # the demo's high-gamma role band: step 2's maps
STEPS = (
    ("1. What does it need?", "overview", None,
     "The shipped Deep4 decodes hand speed (test r 0.97). Under <i>Which inputs does the decoder need?</i> "
     "press <b>Each role in its band</b>: removing 60-90 Hz from the high-gamma channels costs 0.14, the "
     "1-4 Hz waveform 0.06, beta nothing. The decoder ignores a population that does carry the movement: show the "
     "<i>beta envelope</i> in the <b>Signal browser</b> below (orange channels; it falls as hand speed, drawn above "
     "them, rises: r -0.61, less plain to the eye than the green channels' high-gamma rise, r 0.88), or fit G14's beta-band "
     "kernels in the Kernels view: it drops at each movement onset and stays down for about 1 s."),
    ("2. What do units read?", "units", "conv_4",
     "The most amplitude-sensitive of conv_4's amplitude units (red) is selected, its channel maps showing the "
     "high-gamma role band (60-90 Hz): they light the high-gamma channels (green rings, top rows), as for 95% of "
     "conv_4's amplitude units (5 of their 6 strongest channels). With <i>strongest band of each channel</i> (a "
     "band's |mean r| × √bins, the scale of the unit's sensitivity) its first four channels are high-gamma ones, and "
     "three in four of these units have a high-gamma channel first; the 1-4 Hz channels that follow reach 0.09, what "
     "chance gives (the permutation null's 95th percentile, 0.085). Pick conv_2, a blue "
     "(phase) unit and the 1-4 Hz role band: phase units read the 1-4 Hz channels (brown). Untick <i>show known "
     "roles</i> to let the class guess first. The grey crosses are an untrained network's units of the same block: "
     "training raised conv_4's amplitude sensitivity 2.5-fold (median)."),
    ("3. Does sensitivity mean need?", "prune", "conv_4",
     "Click units to silence them and watch the test r. <b>Compute ablation effects</b> (each unit's own drop, "
     "measured on the validation block), then <b>Compute pruning curves</b> ranked by <i>either</i> sensitivity, "
     "then by <i>ablation</i>: the 10% most important units take r from 0.97 to 0.28, the 10% most sensitive to "
     "0.91, no further than 10% chosen at random (0.91). Single-unit drops do not add up: the 10% least "
     "important cost more than 10% at random (0.56). The Kernels "
     "view refits the movement-locked kernels after every prune; <b>Fit channel kernels</b> there sets them beside "
     "the input's own (G03's high gamma rises 0.45 s after onset, its codes follow peak speed)."),
    ("4. What if beta mattered?", "data", None,
     "Set <b>Ipsilateral movements</b> to 0.5 (beta alone marks them), choose Shallow, 4 epochs, "
     "<b>Train</b> (20 to 40 s on two cores), then the Overview's band occlusion again: now beta is what the decoder "
     "needs. (Deep4 trained the same way still ignores beta.)"),
)


OTHER_DECODER = ("<p class='us-muted us-caution'>Steps 1-3 give the shipped Deep4's numbers; the decoder in use "
                 "was trained in this session. <i>Back to the demo decoder</i> (Data &amp; model) returns to it.</p>")


class LessonView(pn.viewable.Viewer):
    """Four buttons and the text of the step last chosen."""

    session = param.ClassSelector(class_=Session)
    step = param.Integer(default=-1, bounds=(-1, len(STEPS) - 1), doc="The step last opened (-1: none yet).")

    def __init__(self, **params):
        super().__init__(**params)
        self.buttons = [pn.widgets.Button(label=title, color="primary", variant="outline",
                                          sizing_mode="stretch_width", margin=(2, 5)) for title, *_ in STEPS]
        for i, b in enumerate(self.buttons):
            b.on_click(lambda _e, i=i: self.open(i))
        self.text = pn.pane.HTML("<p class='us-muted'>A lesson on the demo in four steps (about 15 minutes): "
                                 "each button opens its view.</p>", stylesheets=[CSS], sizing_mode="stretch_width")
        self.note = pn.pane.HTML(OTHER_DECODER, stylesheets=[CSS], sizing_mode="stretch_width")
        self.back = pn.widgets.Button(label="Back to the demo decoder", sizing_mode="stretch_width", margin=(2, 5),
                                      visible=False, css_classes=["us-lesson-back"])
        self.back.on_click(lambda _e: self._back())
        self.column = pn.Column(pn.pane.HTML("<b>Lesson</b>", margin=(10, 5, 0, 5)), *self.buttons, self.note,
                                self.text, self.back, sizing_mode="stretch_width")
        self.shown = Shown(self.session, ["decoder_version"])
        self.shown.set((self.column, self._shown), (self.note, lambda: self._shown() and not self._is_demo()))

    def _back(self) -> None:
        """The shipped decoder again (as the Data view's button: a training is stopped, said)."""
        self.back.visible = False
        self.text.object = ("<p class='us-muted'>Loading the shipped Deep4 ... then press the step again.</p>")
        self.session.back_to_demo()

    def _is_demo(self) -> bool:
        dec = self.session.decoder
        return dec is not None and getattr(dec, "demo_model", None) == "deep4"

    def _shown(self) -> bool:
        """The shipped demo decoder; or, once the lesson has begun, one trained on the demo recording."""
        if self._is_demo():
            return True
        dec = self.session.decoder
        spec = getattr(getattr(dec, "ws", None), "spec", None)
        return self.step >= 0 and getattr(spec, "source", None) == "demo"

    def open(self, i: int) -> None:
        """Open step ``i``: its view, layer and (step 2) the most amplitude-sensitive unit.

        Steps 1-3 describe the shipped Deep4: with another decoder in use (step 4's), the step
        says so and offers the way back, and no view is switched [A] (step 2 had opened a Shallow
        decoder's conv_time_spat/0 under "conv_4's amplitude units" with no probe to show)."""
        title, view, layer, text = STEPS[i]
        s = self.session
        self.step = i
        for k, b in enumerate(self.buttons):
            b.variant = "solid" if k == i else "outline"
        if i < len(STEPS) - 1 and not self._is_demo():
            label = getattr(s.decoder, "label", "another decoder")
            self.text.object = (f"<p class='us-lesson us-caution'>Step {i + 1} is written for the shipped Deep4 and its "
                                f"probe; the decoder in use is {esc(label)}. Press <b>Back to the demo decoder</b> "
                                "below, then this step again.</p>")
            self.back.visible = True
            return
        self.back.visible = False
        update = {"view": view}
        if layer is not None and s.decoder is not None and layer in s.decoder.layer_names:
            update["layer"] = layer
            if view == "units" and s.probe is not None:
                t = unit_table(s.probe, layer)
                amp_units = t["cls"] == "amplitude"
                if amp_units.any():  # the class's own (red) units: the strongest of them
                    update["unit"] = int(t["index"][amp_units][int(np.nanargmax(t["amp"][amp_units]))])
                elif len(t["index"]):
                    update["unit"] = int(t["index"][int(np.nanargmax(t["amp"]))])
                update["channel_map_band"] = STEP2_BAND
        view = update.pop("view")
        s.param.update(**update)
        # [A] the view is switched on the page's next tick, after the redraws the new layer and
        # unit queued there: a tab first shown in the same tick as its plots change could keep
        # the plots of the old selection in the browser (seen: conv_2's scatter under conv_4/53)
        apply_in_doc(pn.state.curdoc, lambda: setattr(s, "view", view))
        self.text.object = f"<p class='us-lesson'>{text}</p>"
        self.shown.sync()

    def __panel__(self):
        return self.column
