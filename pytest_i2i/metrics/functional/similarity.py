"""Row-wise cosine similarity: the one implementation behind CLIP-I, DINO-I, CLIPScore and patch distances.

cos(x, y) = x · y / (‖x‖ ‖y‖) over the last dimension, computed in float64.

A zero vector has no direction. Global embeddings (CLIP, DINO CLS) are never zero for a real
image, so by default a zero row is an error that names it; feature maps (patch tokens, CNN maps
after a ReLU) can hold zero vectors legitimately, and ``eps`` then clamps the denominator
(``max(‖x‖ ‖y‖, eps)``), so a zero vector gives 0, never NaN.
"""

from __future__ import annotations

import torch  # noqa: F401  (the docstring examples use it)
from torch import Tensor

from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional._tensors import as_float64

#: the denominator clamp for feature maps, where zero vectors occur
MAP_EPS = 1e-12


def cosine_similarity(x: Tensor, y: Tensor, *, eps: float | None = None,
                      names: tuple[str, str] = ("x", "y")) -> Tensor:
    """Cosine similarity of matching rows of ``x`` and ``y`` (over the last dimension).

    Args:
        x, y: tensors of the same shape ``(..., D)``, e.g. ``(N, D)`` embeddings or
            ``(N, h, w, D)`` patch tokens.
        eps: ``None``: a zero row raises (its direction is undefined); a float: the denominator
            is ``max(‖x‖ ‖y‖, eps)``, so a zero row gives 0 (use :data:`MAP_EPS` for feature maps).
        names: the arguments' names in error messages.

    Returns:
        float64 tensor of shape ``(...)`` with values in [-1, 1].

    Raises:
        I2IInputError: not tensors, shapes differ, feature dimension 0, non-finite values, or a
            zero row when ``eps`` is ``None``.

    Example:
        >>> cosine_similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
        tensor([0.7071], dtype=torch.float64)
        >>> cosine_similarity(torch.zeros(1, 2), torch.ones(1, 2), eps=MAP_EPS)
        tensor([0.], dtype=torch.float64)
    """
    a, b = as_float64(x, names[0], finite=True), as_float64(y, names[1], finite=True)
    if a.shape != b.shape:
        raise I2IInputError(f"`{names[0]}` and `{names[1]}` must have the same shape; "
                            f"got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim == 0 or a.shape[-1] == 0:
        raise I2IInputError(f"`{names[0]}` needs a feature dimension of size >= 1; got shape {tuple(a.shape)}")
    b = b.to(a.device)
    norms = a.norm(dim=-1) * b.norm(dim=-1)
    if eps is None:
        for name, t in zip(names, (a, b)):
            zero = (t.norm(dim=-1) == 0).flatten().nonzero().flatten().tolist()
            if zero:
                raise I2IInputError(f"`{name}` rows {zero[:10]} are zero vectors; their direction is undefined")
        return (a * b).sum(-1) / norms
    return (a * b).sum(-1) / norms.clamp_min(eps)
