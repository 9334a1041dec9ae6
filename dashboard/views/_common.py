"""Small pieces shared by the views: escaped text, alerts, placeholders."""
from __future__ import annotations

import html
from pathlib import Path

import panel as pn
import param

from ..state import Session

__all__ = ["esc", "CSS", "AlertsView", "placeholder", "kv_table"]

CSS = (Path(__file__).resolve().parents[2] / "assets" / "unitscope.css").read_text()


def esc(text) -> str:
    """HTML-escape text from files (channel names, annotations, paths, messages)."""
    return html.escape(str(text), quote=True)


def placeholder(text: str, **kw) -> pn.pane.HTML:
    return pn.pane.HTML(f'<div class="us-placeholder">{esc(text)}</div>', stylesheets=[CSS],
                        sizing_mode="stretch_width", **kw)


def kv_table(rows) -> str:
    """An HTML table of (key, value) rows; both escaped."""
    body = "".join(f"<tr><td><b>{esc(k)}</b></td><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="us-kv">{body}</table>'


class AlertsView(pn.viewable.Viewer):
    """The session's alerts as dismissable boxes; text is always escaped."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        self._col = pn.Column(sizing_mode="stretch_width", margin=0)
        self.session.param.watch(self._render, "alerts")
        self._render()

    def _render(self, *_):
        items = []
        for i, (level, text) in enumerate(self.session.alerts):
            box = pn.pane.HTML(f'<div class="us-alert us-alert-{esc(level)}" role="alert">{esc(text)}</div>',
                               stylesheets=[CSS], sizing_mode="stretch_width", margin=(0, 5))
            close = pn.widgets.Button(label="✕", width=36, color="light", margin=(4, 5),
                                      description="Dismiss this message")
            close.on_click(lambda e, i=i: self.session.dismiss(i))
            items.append(pn.Row(box, close, sizing_mode="stretch_width", margin=0))
        self._col[:] = items
        self._col.visible = bool(items)

    def __panel__(self):
        return self._col
