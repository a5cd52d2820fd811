"""Identity hook points and ``run_with_cache``, after TransformerLens' ``HookPoint``.

Every tensor worth explaining passes through a ``HookPoint`` named ``hook_*``; its full name
comes from ``named_modules()`` (``blocks.0.attn.hook_pattern``, ``blocks.1.hook_resid_mid``).
The forward pass stays flag-free: caching adds forward hooks inside a context manager and
removes them in ``finally``, so an exception never leaves hooks behind.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


class HookPoint(nn.Module):
    """Identity module; forward hooks on it observe (or replace) the tensor passing through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


NamesFilter = Callable[[str], bool] | list[str] | str | None


def _as_filter(names_filter: NamesFilter) -> Callable[[str], bool]:
    if names_filter is None:
        return lambda name: True
    if isinstance(names_filter, str):
        return lambda name: name == names_filter
    if isinstance(names_filter, (list, tuple, set)):
        wanted = set(names_filter)
        return lambda name: name in wanted
    return names_filter


class HookedRootModule(nn.Module):
    """Base class that knows its hook points and can cache their activations."""

    def hook_points(self) -> dict[str, HookPoint]:
        return {name: m for name, m in self.named_modules() if isinstance(m, HookPoint)}

    @contextmanager
    def hooks(self, fwd_hooks: list[tuple[str, Callable]]) -> Iterator[None]:
        """Temporarily attach ``(name, fn(tensor, name) -> tensor | None)`` forward hooks.

        Raises:
            KeyError: a name that is not a hook point.
        """
        points = self.hook_points()
        handles = []
        try:
            for name, fn in fwd_hooks:
                if name not in points:
                    raise KeyError(f"no hook point named {name!r}; known: {sorted(points)}")
                handles.append(points[name].register_forward_hook(
                    lambda mod, inp, out, fn=fn, name=name: fn(out, name)))
            yield
        finally:
            for h in handles:
                h.remove()

    def run_with_cache(self, tokens: torch.Tensor, names_filter: NamesFilter = None,
                       detach: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run the model and return ``(logits, cache)``.

        Args:
            tokens: ``[batch, pos]`` int64.
            names_filter: which hook points to keep (callable, list, one name, or None = all).
            detach: detach cached tensors from the graph.

        Returns:
            logits as ``forward`` returns them, and a dict hook name -> activation tensor.
        """
        keep = _as_filter(names_filter)
        cache: dict[str, torch.Tensor] = {}

        def save(t: torch.Tensor, name: str) -> None:
            cache[name] = t.detach() if detach else t

        names = [n for n in self.hook_points() if keep(n)]
        with self.hooks([(n, save) for n in names]):
            logits = self(tokens)
        return logits, cache
