"""A statement: one or more domains proven together in one proof.

Each **domain** is an AIR (air.py) with its own trace length, segments,
auxiliary columns and constraints; what binds them is what they share
(docs/STATE_DOMAIN.md, docs/STARK.md "Statements of several domains"):

* the challenges, drawn once: domain d's challenge i is the statement's
  challenge i, so a tuple compresses to the same value whichever domain
  supplies or consumes it (the statement draws the most any domain needs);
* one LogUp sum split across domains: a domain whose AIR has a
  ``shared_argument`` claims that argument's total t_d (carried by the
  proof, bound before alpha and z), its relation closes on t_d, and the
  claims must add up to the statement's ``target`` (a function of the
  challenges and the public data, 0 unless given);
* one constraint-combination challenge alpha, one out-of-domain point z,
  one FRI: the tall domain's DEEP function is FRI's first layer, every other
  domain's joins where the folding reaches its height.

A one-domain statement (``Statement.of(air)``) is exactly the single-AIR
proof system: the same transcript, the same proof bytes.  In a statement of
several domains a matrix is named ``domain.matrix`` (``cells.init``,
``steps.aux``); in a one-domain statement by its own name.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .air import Air
from .ext_scalar import Ext
from .params import MAX_LOG_TRACE


@dataclass(frozen=True)
class Domain:
    name: str
    air: Air

    @property
    def log_length(self) -> int:
        return self.air.trace_length.bit_length() - 1


class Statement:
    """Domains in order, and what binds them.  `target(challenges)` gives
    the value the claimed sums add up to ((k, 4) Montgomery challenges in,
    an Ext out; the same function on both sides, so a function of public
    data); `public` the bytes the transcript binds for the whole statement
    (default: each domain's ``public_bytes``, framed by its name);
    `public_fractions` the fractions the target sums itself (public tables),
    which the LogUp soundness term counts."""

    def __init__(self, name: str, domains: Sequence[tuple[str, Air]],
                 target: Callable[[np.ndarray], Ext] | None = None,
                 public: bytes | None = None, public_fractions: int = 0):
        if not domains:
            raise ValueError("a statement needs at least one domain")
        self.name = name
        self.domains = tuple(Domain(n, a) for n, a in domains)
        names = [d.name for d in self.domains]
        if len(set(names)) != len(names):
            raise ValueError(f"statement {name!r} names a domain twice: {names}")
        if len(self.domains) > 1:
            for d in names:
                if not d or "." in d:
                    raise ValueError(f"statement {name!r}: domain name {d!r} must be non-empty "
                                     "and without a dot (matrices are named domain.matrix)")
        for d in self.domains:
            if d.log_length > MAX_LOG_TRACE:
                raise ValueError(f"statement {name!r}: domain {d.name!r} has 2^{d.log_length} rows, "
                                 f"over the 2^{MAX_LOG_TRACE} a proof may have")
        if len(self.domains) > 255:
            raise ValueError(f"statement {name!r} has {len(self.domains)} domains, at most 255")
        self._target = target
        self._public = public
        self.public_fractions = public_fractions

    @classmethod
    def of(cls, air: Air) -> "Statement":
        """The one-domain statement of `air`: today's single-AIR proof."""
        return cls(type(air).__name__, [(type(air).__name__, air)])

    # ----------------------------------------------------------- shape --
    @property
    def single(self) -> bool:
        return len(self.domains) == 1

    def matrix_name(self, d: int, name: str) -> str:
        """A matrix of domain `d` as the proof and the caller name it."""
        return name if self.single else f"{self.domains[d].name}.{name}"

    @property
    def log_lengths(self) -> tuple[int, ...]:
        return tuple(d.log_length for d in self.domains)

    @property
    def tall(self) -> int:
        """The domain of the largest height (the first, among equals): its
        DEEP function is FRI's first layer, its LDE is where queries are drawn."""
        lengths = self.log_lengths
        return lengths.index(max(lengths))

    @property
    def num_challenges(self) -> int:
        return max(d.air.num_challenges for d in self.domains)

    def challenges_of(self, d: int, challenges: np.ndarray) -> np.ndarray:
        """Domain d's challenges: the first of the statement's it declares."""
        return challenges[: self.domains[d].air.num_challenges]

    @property
    def claiming(self) -> tuple[int, ...]:
        """The domains that claim a sum (their AIR shares a LogUp argument)."""
        return tuple(i for i, d in enumerate(self.domains) if d.air.shared_argument is not None)

    # ------------------------------------------------------- public data --
    def target(self, challenges: np.ndarray) -> Ext:
        return Ext(0) if self._target is None else self._target(challenges)

    def public_bytes(self) -> bytes:
        if self.single:
            return self.domains[0].air.public_bytes()
        if self._public is not None:
            return self._public
        return b"".join(d.name.encode() + b":" + d.air.public_bytes() + b";" for d in self.domains)

    # ---------------------------------------------------------- security --
    def algebraic_degree(self) -> int:
        """D of the security formula (docs/SECURITY.md): one domain's is its
        AIR's; for several, max(sum_d d_d N_d, 3 F_total): one z serves every
        domain, so it avoids every domain's identity (a union bound), and
        the LogUp sums share their challenges, so their fractions count
        together, with the target's public ones."""
        if self.single:
            air = self.domains[0].air
            return air.algebraic_degree(air.trace_length)
        return max(sum(d.air.identity_degree(d.air.trace_length) for d in self.domains),
                   sum(d.air.lookup_degree(d.air.trace_length) for d in self.domains)
                   + 3 * self.public_fractions)

    def validate(self) -> None:
        """Check every domain's declaration (raises ValueError)."""
        for d in self.domains:
            d.air.validate()
        if self._target is not None and not self.claiming:
            raise ValueError(f"statement {self.name!r} has a target but no domain claims a sum "
                             "(no AIR has a shared_argument)")


def as_statement(subject: "Air | Statement") -> Statement:
    """A statement, given one or an AIR (its one-domain statement)."""
    return subject if isinstance(subject, Statement) else Statement.of(subject)
