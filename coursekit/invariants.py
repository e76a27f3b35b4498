"""The course invariants, as functions the tests (and instructors) can call.

1. No free points: every exercise test fails against the untouched stub, except
   tests marked ``stub_keeps``; and every exercise has at least one failing test.
2. Parity: ``exercises/`` and ``solutions/`` expose the same public names, and
   every public function or method takes the same parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from coursekit.runner import TestOutcome

STUB_KEEPS_MARKER = "stub_keeps"


def free_points(outcomes: Iterable[TestOutcome]) -> list[TestOutcome]:
    """Tests that pass against a stub without saying that they guard kept behaviour."""
    return [o for o in outcomes if o.passed and STUB_KEEPS_MARKER not in o.markers]


def _parameters(func: Any) -> list[tuple[str, str, str]]:
    """Name, kind and default of each parameter: the call shape, annotations aside.

    Annotations are left out on purpose: some stubs leave typing to the learner.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    return [
        (p.name, p.kind.name, "" if p.default is inspect.Parameter.empty else repr(p.default))
        for p in signature.parameters.values()
    ]


def _public_members(cls: type) -> dict[str, Any]:
    members = {}
    for name, value in vars(cls).items():
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
            continue
        if name.startswith("__") and name not in _COMPARED_DUNDERS:
            continue
        members[name] = value
    return members


# Dunders that are part of a class's public behaviour (operators, protocols).
_COMPARED_DUNDERS = frozenset(
    {"__init__", "__call__", "__add__", "__sub__", "__mul__", "__eq__", "__lt__", "__len__",
     "__iter__", "__contains__", "__getitem__", "__enter__", "__exit__", "__aenter__",
     "__aexit__", "__str__"}
)  # fmt: skip


def _unwrap(value: Any) -> Any:
    if isinstance(value, (classmethod, staticmethod)):
        return value.__func__
    if isinstance(value, property):
        return value.fget
    return value


def parity_problems(exercise: ModuleType, solution: ModuleType) -> list[str]:
    """Differences in public API between an exercise module and its solution."""
    problems: list[str] = []
    ex_names = set(getattr(exercise, "__all__", ()))
    sol_names = set(getattr(solution, "__all__", ()))
    if not ex_names:
        problems.append(f"{exercise.__name__} defines no __all__")
    if ex_names != sol_names:
        problems.append(
            f"__all__ differs: only in exercise {sorted(ex_names - sol_names)}, "
            f"only in solution {sorted(sol_names - ex_names)}"
        )
    for name in sorted(ex_names & sol_names):
        ex_obj, sol_obj = getattr(exercise, name, None), getattr(solution, name, None)
        if ex_obj is None or sol_obj is None:
            problems.append(f"{name}: listed in __all__ but not defined")
        elif inspect.isclass(ex_obj) != inspect.isclass(sol_obj):
            problems.append(f"{name}: a class on one side only")
        elif inspect.isclass(ex_obj):
            problems.extend(_class_problems(name, ex_obj, sol_obj))
        elif callable(ex_obj) and _parameters(ex_obj) != _parameters(sol_obj):
            problems.append(f"{name}{inspect.signature(ex_obj)} != {inspect.signature(sol_obj)}")
    return problems


def _class_problems(name: str, ex_cls: type, sol_cls: type) -> list[str]:
    problems = []
    ex_members, sol_members = _public_members(ex_cls), _public_members(sol_cls)
    # Methods the stub declares must exist in the solution with the same shape;
    # the solution may add private helpers and dunders the stub did not need.
    for member in sorted(ex_members):
        ex_value = _unwrap(ex_members[member])
        if member not in sol_members:
            if member.startswith("__"):
                continue
            problems.append(f"{name}.{member}: missing in the solution")
            continue
        sol_value = _unwrap(sol_members[member])
        both_callable = callable(ex_value) and callable(sol_value)
        if both_callable and _parameters(ex_value) != _parameters(sol_value):
            problems.append(f"{name}.{member}: parameters differ")
    for member in sorted(set(sol_members) - set(ex_members)):
        if not member.startswith("__") and callable(_unwrap(sol_members[member])):
            problems.append(f"{name}.{member}: in the solution but not in the stub")
    return problems
