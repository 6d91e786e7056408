"""Text inputs: one check for every place that takes texts (CLIP embeddings and scores, generator
instructions), so they are accepted and refused alike everywhere. Standard library only."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_i2i.errors import I2IInputError


def check_texts(
    texts: str | Sequence[str], name: str = "texts", *, n: int | None = None, single: bool = True,
    blank: bool = False,
) -> list[str]:
    """``texts`` as a list of strings.

    Args:
        texts: a sequence of strings (with ``single``, also one string: a list of one).
        name: the argument's name, used in messages (``name[i]`` for an item).
        n: the number of texts required (one per image), or ``None`` for any non-zero number.
        single: accept a lone string (otherwise one text per image is expected, and a string,
            itself a sequence of characters, is refused).
        blank: accept empty and whitespace-only strings (a generator may take an empty
            instruction; CLIP cannot embed one meaningfully).

    Raises:
        I2IInputError: not a sequence of strings, no texts, not ``n`` of them, a non-string
            item or (without ``blank``) an empty one; the message names ``name`` or ``name[i]``.

    Example:
        >>> check_texts("a cat")
        ['a cat']
        >>> check_texts(["", "b"], "instructions", n=2, single=False, blank=True)
        ['', 'b']
    """
    if isinstance(texts, str) and single:
        items: Sequence = [texts]
    elif isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Sequence):
        kinds = "a string or a list of strings" if single else "a list of strings"
        raise I2IInputError(f"{name} must be {kinds}" + (" (one per image)" if n is not None else "")
                            + f", got {type(texts).__name__}")
    else:
        items = texts
    if n is not None and len(items) != n:
        raise I2IInputError(f"{name} has {len(items)} entries for {n} images; pass one text per image")
    if len(items) == 0:
        raise I2IInputError(f"{name} is empty")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise I2IInputError(f"{name}[{i}] is a {type(t).__name__}, not a string")
        if not blank and not t.strip():
            raise I2IInputError(f"{name}[{i}] is an empty string; an empty text cannot be embedded meaningfully")
    return list(items)
