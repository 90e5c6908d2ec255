"""The errors the compiler raises (``XCSError``s: the hierarchy's root is ``xcs.runtime.errors``)."""

from __future__ import annotations

from xcs.runtime.errors import CycleError, XCSError


class JitError(XCSError, TypeError):
    """``jit`` (or a transform) was applied to something it cannot compile, or with bad options."""


class OperatorCycleError(CycleError):
    """An operator's attributes hold a container that contains itself (``self.cfg["self"] = self.cfg``).

    The structure hash of a jitted operator covers its static attribute values, which must be finite;
    ``cycle`` is the attribute path, the container reached again last
    (``("Pipeline.cfg['self']", "Pipeline.cfg")``). A back-reference to an operator
    (``stage.parent = pipeline``, ``self.me = self``) is not an error: it is hashed as a reference."""

    def __init__(self, operator: str, cycle: tuple[str, ...]):
        self.operator = operator
        self.cycle = tuple(cycle)
        ValueError.__init__(
            self,
            f"{' -> '.join(self.cycle)}: {operator} holds a container that contains itself; a jitted "
            "operator is keyed by its static attributes, which must be finite: keep the cyclic value "
            "out of the operator's attributes, or hold it in a plain object (whose fields other than "
            "literals the hash does not follow)",
        )
