"""Reversible unit masks: silence chosen units of a decoder without touching its weights.

A :class:`MaskSet` holds one boolean *keep* vector per hidden conv block, keyed by the block's
stable name (``"conv_time_spat"``, ``"conv_2"``, ...). Attached to a model it multiplies the
output of the block's ``mask_module`` (after the nonlinearity and the pooling, right before
dropout and the next conv) by 0/1 per channel, so a masked unit contributes nothing
downstream (METHODS.md 1.7 item 4). Zeroing the conv output before BatchNorm would not
silence the unit: BN adds ``beta - gamma * mu / sigma`` (METHODS.md 1.10).

Masks are reversible (:meth:`MaskSet.restore`), composable (``a | b`` prunes the units pruned
in either), and round-trip through JSON together with an architecture signature, so a mask
saved for another network is refused with a clear message.
"""
from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._files import atomic_write_bytes
from .._validation import UnitScopeError, ensure_int, suggest
from ..models import LayerInfo, get_layer, layer_map

__all__ = ["MaskSet", "MaskHandle", "architecture_signature", "maskable_layers"]

logger = logging.getLogger(__name__)

FORMAT = "unitscope.maskset"
FORMAT_VERSION = 1
MAX_UNITS = 100_000  # [A] units a mask may name, in all (Deep4 has 376)


def _check_signatures(mine: Mapping, theirs: Mapping) -> None:
    """Refuse a mask whose architecture signature (``mine``) is not the model's (``theirs``)."""
    keys = ("kind", "n_chans", "n_outputs", "units")
    if any(mine.get(k) != theirs.get(k) for k in keys if mine.get(k) is not None):
        raise UnitScopeError(f"This mask was saved for {_describe(mine)}, but the model is {_describe(theirs)}.")
OUTPUT_LAYER = "conv_classifier"


def maskable_layers(model: nn.Module) -> list[LayerInfo]:
    """The hidden conv blocks of ``model`` that can be masked (every block but the output)."""
    return [info for info in layer_map(model) if info.name != OUTPUT_LAYER]


def architecture_signature(model: nn.Module) -> dict:
    """What a mask depends on: the architecture kind, its input/output sizes and units per block.

    Returns
    -------
    signature : dict
        ``{"kind": str, "n_chans": int | None, "n_outputs": int | None, "units": {layer: n}}``.
    """
    cfg = getattr(model, "unitscope_config", {}) or {}
    return {
        "kind": cfg.get("kind", getattr(model, "unitscope_kind", type(model).__name__)),
        "n_chans": cfg.get("n_chans"),
        "n_outputs": cfg.get("n_outputs"),
        "units": {info.name: int(info.n_units) for info in maskable_layers(model)},
    }


def _describe(sig: Mapping) -> str:
    units = sig.get("units", {})
    units = ", ".join(f"{k}:{v}" for k, v in units.items()) if isinstance(units, Mapping) else repr(units)
    return (f"{str(sig.get('kind'))[:40]} (n_chans={str(sig.get('n_chans'))[:20]}, "
            f"n_outputs={str(sig.get('n_outputs'))[:20]}; units {units[:300]})")


def _differ(a: Mapping, b: Mapping) -> bool:
    """Whether two architecture signatures name different decoders: their units per layer, or
    the kind or channel or output counts that both give (a mask saved before a key was kept
    gives none). A mask of a 16-channel Deep4 was measured on a 32-channel one: the unit
    counts alone agree."""
    return a.get("units") != b.get("units") or any(
        a.get(k) != b.get(k) for k in ("kind", "n_chans", "n_outputs") if a.get(k) is not None and b.get(k) is not None)


class MaskSet:
    """Per-layer boolean keep vectors for the hidden conv blocks of one architecture.

    Build one with :meth:`for_model`. Editing methods (:meth:`prune`, :meth:`restore`,
    :meth:`toggle`, :meth:`set_keep`) work in place and return ``self``; a model the mask is
    attached to (:meth:`attach`, :meth:`apply`) sees every change at its next forward pass.

    Parameters
    ----------
    signature : dict
        Architecture signature (see :func:`architecture_signature`); its ``"units"`` entry
        fixes the layer names, their order and their numbers of units.
    """

    def __init__(self, signature: Mapping):
        units = signature.get("units", {}) if isinstance(signature, Mapping) else None
        if not isinstance(units, Mapping) or not units:
            raise UnitScopeError(f"A MaskSet needs a signature naming at least one maskable layer and its number of "
                                 f"units (e.g. {{'units': {{'conv_2': 50}}}}); got {signature!r:.200}.")
        for name, n in units.items():  # (a mask file's "3000000000" took gigabytes before it was refused)
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_UNITS:
                raise UnitScopeError(f"The signature's layer {str(name)!r:.80} has {n!r:.80} units; expected a whole "
                                     f"number from 1 to {MAX_UNITS}.")
        if sum(int(n) for n in units.values()) > MAX_UNITS:  # (each layer under the cap, many layers)
            raise UnitScopeError(f"The signature names {len(units)} layers of {sum(int(n) for n in units.values())} "
                                 f"units in all; a mask covers at most {MAX_UNITS} units.")
        units = dict(units)
        self.signature = {**dict(signature), "units": units}
        self._keep = {name: np.ones(int(n), dtype=bool) for name, n in units.items()}
        self.version = 0  # increases with every change (cache key for hooks and evaluators)

    @classmethod
    def for_model(cls, model: nn.Module) -> "MaskSet":
        """An empty mask (every unit kept) for ``model``'s architecture."""
        return cls(architecture_signature(model))

    # ---- queries ---------------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        """Maskable layer names in forward order."""
        return list(self._keep)

    @property
    def n_pruned(self) -> int:
        """Total number of masked units over all layers."""
        return int(sum((~k).sum() for k in self._keep.values()))

    def _check_layer(self, layer: str) -> str:
        if layer not in self._keep:
            extra = (" The output layer cannot be masked." if layer == OUTPUT_LAYER else "")
            raise UnitScopeError(
                f"Unknown layer {layer!r}; the maskable layers are {self.layers}.{extra}"
                f"{suggest(layer, self.layers)}"
            )
        return layer

    def _check_units(self, layer: str, units) -> np.ndarray:
        n = len(self._keep[layer])
        if np.ndim(units) == 0:  # one unit (a float or bool among them is refused by name below)
            units = [units]
        idx = np.asarray([ensure_int("unit index", u) for u in units], dtype=int)
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise UnitScopeError(
                f"Unit index {bad.tolist()[0]} is out of range for layer {layer!r}, which has {n} units "
                f"(valid indices 0..{n - 1})."
            )
        return idx

    def keep(self, layer: str) -> np.ndarray:
        """Copy of the keep vector of ``layer``, shape (n_units,), bool (False = masked)."""
        return self._keep[self._check_layer(layer)].copy()

    def pruned(self, layer: str) -> np.ndarray:
        """Indices of the masked units of ``layer``, shape (n_pruned,), int, ascending."""
        return np.flatnonzero(~self._keep[self._check_layer(layer)])

    def diff(self, other: "MaskSet") -> dict[str, np.ndarray]:
        """Units whose state differs between ``self`` and ``other``: layer -> indices (only
        layers with differences, in forward order)."""
        self._check_same(other)
        out = {}
        for name, keep in self._keep.items():
            idx = np.flatnonzero(keep != other._keep[name])
            if idx.size:
                out[name] = idx
        return out

    def __eq__(self, other) -> bool:
        if not isinstance(other, MaskSet) or _differ(self.signature, other.signature):
            return False
        return all(np.array_equal(k, other._keep[n]) for n, k in self._keep.items())

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {int((~k).sum())}/{len(k)}" for n, k in self._keep.items())
        return f"<MaskSet {self.signature.get('kind')} pruned {parts}>"

    # ---- edits (in place, return self) ----------------------------------------------
    def _touch(self) -> "MaskSet":
        self.version += 1
        return self

    def prune(self, layer: str, units) -> "MaskSet":
        """Mask ``units`` (an int or a sequence of ints) of ``layer``; returns ``self``."""
        idx = self._check_units(self._check_layer(layer), units)
        self._keep[layer][idx] = False
        return self._touch()

    def restore(self, layer: str | None = None, units=None) -> "MaskSet":
        """Unmask ``units`` of ``layer`` (all of its units when None; every layer when
        ``layer`` is None); returns ``self``."""
        if layer is None:
            if units is not None:
                raise UnitScopeError("restore(units=...) needs a layer name.")
            for keep in self._keep.values():
                keep[:] = True
            return self._touch()
        self._check_layer(layer)
        idx = slice(None) if units is None else self._check_units(layer, units)
        self._keep[layer][idx] = True
        return self._touch()

    def toggle(self, layer: str, unit: int) -> "MaskSet":
        """Flip the state of one unit (of each unit, given a sequence); returns ``self``."""
        idx = self._check_units(self._check_layer(layer), unit)
        self._keep[layer][idx] = ~self._keep[layer][idx]
        return self._touch()

    def set_keep(self, layer: str, keep) -> "MaskSet":
        """Replace the keep vector of ``layer`` (bool, shape (n_units,)); returns ``self``."""
        keep = np.asarray(keep)
        n = len(self._keep[self._check_layer(layer)])
        if keep.shape != (n,) or keep.dtype != bool:
            raise UnitScopeError(f"The keep vector of {layer!r} must be bool of shape ({n},), got "
                                 f"{keep.dtype} of shape {keep.shape}.")
        self._keep[layer][:] = keep
        return self._touch()

    def copy(self) -> "MaskSet":
        new = MaskSet(self.signature)
        for name, keep in self._keep.items():
            new._keep[name][:] = keep
        return new

    def _check_same(self, other: "MaskSet") -> None:
        if not isinstance(other, MaskSet):
            raise UnitScopeError(f"Expected a MaskSet, got {type(other).__name__}.")
        if _differ(self.signature, other.signature):
            raise UnitScopeError(f"The masks belong to different architectures: {_describe(self.signature)} "
                                 f"vs {_describe(other.signature)}.")

    def __or__(self, other: "MaskSet") -> "MaskSet":
        """Compose: a new MaskSet masking every unit masked in ``self`` or ``other``."""
        self._check_same(other)
        new = self.copy()
        for name in new._keep:
            new._keep[name] &= other._keep[name]
        return new

    # ---- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able dict: format tag, architecture signature and masked indices per layer."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "signature": self.signature,
                "pruned": {n: np.flatnonzero(~k).tolist() for n, k in self._keep.items()}}

    @classmethod
    def from_dict(cls, d: Mapping, *, model: nn.Module | None = None) -> "MaskSet":
        """Rebuild a MaskSet; with ``model``, refuse a mask saved for another architecture."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT or "signature" not in d:
            raise UnitScopeError(f"Not a UnitScope mask: expected a dict with format={FORMAT!r} and a "
                                 f"signature, got keys {sorted(d) if isinstance(d, Mapping) else type(d).__name__}.")
        if model is not None and isinstance(d["signature"], Mapping):  # before anything is built from it
            _check_signatures(d["signature"], architecture_signature(model))
        masks = cls(d["signature"])
        pruned = d.get("pruned", {})
        if not isinstance(pruned, Mapping):
            raise UnitScopeError(f"A mask's 'pruned' maps layer names to unit indices, e.g. {{'conv_2': [3, 7]}}; "
                                 f"got {pruned!r:.200}.")
        for layer, units in pruned.items():
            masks.prune(layer, units)
        return masks

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, *, model: nn.Module | None = None) -> "MaskSet":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UnitScopeError(f"Invalid mask JSON: {exc}") from exc
        return cls.from_dict(d, model=model)

    def save(self, path: str | Path) -> Path:
        """Write the mask as JSON atomically (temporary file, then rename)."""
        path = Path(path)
        atomic_write_bytes(path, json.dumps(self.to_dict(), indent=1).encode())
        return path

    @classmethod
    def load(cls, path: str | Path, *, model: nn.Module | None = None) -> "MaskSet":
        path = Path(path)
        if not path.is_file():
            raise UnitScopeError(f"Mask file {str(path)!r} does not exist.")
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # (a traceback, for a probe.nc given as --mask by mistake)
            what = ("a netCDF file (a result of unitscope probe, prune --curve or deconv)"
                    if data[:4] in (b"\x89HDF", b"CDF\x01", b"CDF\x02") else "not text")
            raise UnitScopeError(f"Mask file {str(path)!r} is {what}, not a mask: a mask is the JSON file that "
                                 "unitscope prune --save-mask or the app's Export writes.") from None
        try:
            return cls.from_json(text, model=model)
        except UnitScopeError as exc:
            if not str(exc).startswith("Invalid mask JSON"):
                raise
            raise UnitScopeError(f"Mask file {str(path)!r}: {exc}") from exc

    # ---- applying to a model ---------------------------------------------------------
    def check_compatible(self, model: nn.Module) -> None:
        """Raise :class:`UnitScopeError` unless ``model`` has this mask's architecture."""
        _check_signatures(self.signature, architecture_signature(model))

    def keep_tensor(self, layer: str, *, ndim: int = 4, dtype=torch.float32, device=None) -> torch.Tensor:
        """The keep vector of ``layer`` as 0/1 of shape (1, n_units, 1, ...) with ``ndim`` dims."""
        keep = torch.as_tensor(self._keep[self._check_layer(layer)], dtype=dtype, device=device)
        return keep.reshape((1, -1) + (1,) * (ndim - 2))

    def attach(self, model: nn.Module) -> "MaskHandle":
        """Install forward hooks on ``model``'s mask modules; remove them with the returned
        handle (``handle.remove()``, or use it as a context manager). The hooks read this
        MaskSet live; the model's weights are never modified."""
        self.check_compatible(model)
        hooks = []
        try:
            for info in maskable_layers(model):
                hooks.append(get_layer(model, info.mask_module).register_forward_hook(_MaskHook(self, info.name)))
        except BaseException:
            for h in hooks:
                h.remove()
            raise
        return MaskHandle(hooks)

    @contextlib.contextmanager
    def apply(self, model: nn.Module):
        """Context manager: ``with masks.apply(model): out = model(X)``; hooks removed on exit."""
        handle = self.attach(model)
        try:
            yield model
        finally:
            handle.remove()

    # ---- convenience -----------------------------------------------------------------
    def prune_many(self, units: Mapping[str, Iterable[int]]) -> "MaskSet":
        """Mask several layers at once: ``{layer: indices}``; returns ``self``."""
        for layer, idx in units.items():
            self.prune(layer, list(idx))
        return self


class _MaskHook:
    """Forward hook multiplying a mask module's output by the layer's 0/1 keep vector."""

    def __init__(self, masks: MaskSet, layer: str):
        self.masks, self.layer = masks, layer
        self._cache = (None, None)

    def __call__(self, module, inputs, output):
        keep = self.masks._keep[self.layer]
        if keep.all():
            return None  # identical output, no copy
        if output.shape[1] != len(keep):
            raise UnitScopeError(f"Layer {self.layer!r} has {output.shape[1]} channels but the mask has {len(keep)}.")
        key = (self.masks.version, output.dtype, output.device, output.dim())
        if self._cache[0] != key:
            self._cache = (key, self.masks.keep_tensor(self.layer, ndim=output.dim(), dtype=output.dtype,
                                                       device=output.device))
        return output * self._cache[1]


class MaskHandle:
    """Removable set of mask hooks (also a context manager)."""

    def __init__(self, hooks: list):
        self._hooks = hooks

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def __enter__(self) -> "MaskHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
