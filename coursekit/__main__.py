"""Command line: ``python -m coursekit check 01 | progress | hint 01 | solution 01``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coursekit import learner


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="run one exercise's tests against your code")
    check.add_argument("exercise", help="exercise number, e.g. 01 or ex01")
    check.add_argument(
        "--impl", choices=["exercises", "solutions"], default="exercises",
        help="check your code (default) or the reference solution",
    )  # fmt: skip

    sub.add_parser("progress", help="all exercises, done or open")

    hint = sub.add_parser("hint", help="the next hint for an exercise")
    hint.add_argument("exercise")
    hint.add_argument("--level", type=int, help="show hint number N")
    hint.add_argument("--reset", action="store_true", help="start again from the first hint")

    solution = sub.add_parser("solution", help="the reference solution (once yours passes)")
    solution.add_argument("exercise")
    solution.add_argument("--force", action="store_true", help="show it even if yours fails")

    args = parser.parse_args(argv)
    if args.command == "check":
        report = learner.check(args.exercise, impl=args.impl)
        print(report)
        return 0 if report.ok else 1
    if args.command == "progress":
        print(learner.progress())
        return 0
    if args.command == "hint":
        hint_report = learner.hint(args.exercise, level=args.level, reset=args.reset)
        print(hint_report)
        return 0 if hint_report.total else 1
    solution_report = learner.solution(args.exercise, force=args.force)
    print(solution_report)
    return 0 if solution_report.shown else 1


if __name__ == "__main__":
    sys.exit(main())
