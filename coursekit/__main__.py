"""Command line: ``python -m coursekit check 01 | progress | hint 01 | solution 01 | class-report DIR...``."""

from __future__ import annotations

import argparse
import inspect
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from coursekit import learner
from coursekit.impl import Impl


def _stop_on_terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM/SIGHUP into SystemExit so that the runner's cleanup runs and
    # kills the test process group instead of leaving it behind.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop_on_terminate)
    signal.signal(signal.SIGHUP, _stop_on_terminate)
    parser = argparse.ArgumentParser(prog="python -m coursekit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="run one exercise's tests against your code")
    check.add_argument("exercise", help="exercise number, e.g. 01 or ex01")
    check.add_argument(
        "--impl", choices=["exercises", "solutions"], default="exercises",
        help="check your code (default) or the reference solution",
    )  # fmt: skip
    check.add_argument("--fast", action="store_true", help="only the fast tests (no fuzzing, races, mypy)")

    sub.add_parser("progress", help="all exercises, done or open")

    hint = sub.add_parser("hint", help="the next hint for the first open task of an exercise")
    hint.add_argument("exercise")
    hint.add_argument("--task", type=int, help="a hint for task N instead of the first open one")
    hint.add_argument("--level", type=int, help="show hint number N (1 concept, 2 approach, 3 sketch)")
    hint.add_argument("--reset", action="store_true", help="start again from the first hint")

    solution = sub.add_parser("solution", help="the reference solution (once yours passes)")
    solution.add_argument("exercise")
    solution.add_argument("--force", action="store_true", help="show it even if yours fails")

    room = sub.add_parser(
        "class-report", help="(instructors) per exercise: learners done, in progress, stuck, not started"
    )
    room.add_argument("dirs", nargs="+", metavar="DIR", help="course folders, or homes holding one")
    room.add_argument("--html", metavar="FILE", help="also write a self-contained page with a chart")
    room.add_argument("--names", action="store_true", help="list the stuck learners (folder names)")

    variants = sub.add_parser("variants", help="(maintainers) run the known wrong answers of an exercise")
    variants.add_argument("exercise", nargs="+")
    variants.add_argument(
        "--only", choices=["redis", "postgresql", "sqlite"], default="",
        help="just the variants that only this service can show",
    )  # fmt: skip

    bench = sub.add_parser(
        "bench-check", help="(maintainers) median check time per exercise, stub and solved"
    )
    bench.add_argument("--runs", type=int, default=5)
    bench.add_argument("exercise", nargs="*")

    load_bench = sub.add_parser(
        "bench",
        help="notebook 10's load test, longer: hello world, naive and tuned side by side (make bench)",
    )
    load_bench.add_argument("--users", type=int, default=16, help="users per app (default 16)")
    load_bench.add_argument("--seconds", type=float, default=30.0, help="run time (default 30)")
    load_bench.add_argument("--processes", type=int, help="locust worker processes (--processes)")

    lint = sub.add_parser(
        "lint-openapi", help="lint an exercise app's OpenAPI with Spectral's OWASP rules (make spectral)"
    )
    lint.add_argument("exercise", help="an exercise whose module has create_app(), e.g. 03")
    lint.add_argument("--impl", choices=["exercises", "solutions"], default="exercises")

    grade = sub.add_parser("grade", help="score an exercise per section, deep tests included (e.g. 13)")
    grade.add_argument("exercise")
    grade.add_argument("--impl", choices=["exercises", "solutions"], default="exercises")

    args = parser.parse_args(argv)
    if args.command == "grade":
        from coursekit.grading import grade as grade_exercise

        graded = grade_exercise(args.exercise, args.impl)
        print(graded)
        return 0 if graded.full_marks else 1
    if args.command == "lint-openapi":
        return _lint_openapi(args.exercise, args.impl)
    if args.command == "check":
        report = learner.check(args.exercise, impl=args.impl, deep=not args.fast)
        print(report)
        if args.fast:  # deep tests were not asked for: only the ones that ran count
            ran = [o for o in report.outcomes if o.outcome != "not run"]
            return 0 if not report.blocker and ran and all(o.passed for o in ran) else 1
        return 0 if report.ok else 1
    if args.command == "progress":
        print(learner.progress())
        return 0
    if args.command == "hint":
        hint_report = learner.hint(args.exercise, task=args.task, level=args.level, reset=args.reset)
        print(hint_report)
        return 0 if hint_report.total else 1
    if args.command == "solution":
        solution_report = learner.solution(args.exercise, force=args.force)
        print(solution_report)
        return 0 if solution_report.shown else 1
    if args.command == "class-report":
        from coursekit.classreport import main as class_report

        return class_report(args.dirs, html_file=args.html, names=args.names)
    if args.command == "bench":
        from coursekit.loadbench import run_bench

        print("running hello world, naive and tuned side by side...", flush=True)
        print(run_bench(users=args.users, seconds=args.seconds, processes=args.processes).report())
        return 0
    if args.command == "bench-check":
        from coursekit.bench import bench_check

        print(bench_check(args.exercise, runs=args.runs))
        return 0
    from coursekit import catalog
    from coursekit.variants import report as variants_report

    all_ok = True
    for key in args.exercise:
        ok, text = variants_report(catalog.find(key), only=args.only)
        print(text, flush=True)
        all_ok &= ok
    return 0 if all_ok else 1


def _lint_openapi(key: str, impl: Impl) -> int:
    from coursekit import catalog, spectral
    from coursekit.impl import load

    if not spectral.available():
        print(spectral.INSTALL_HINT)
        return 2
    module = load(catalog.find(key).module, impl)
    create_app = getattr(module, "create_app", None)
    if create_app is None:
        print(f"{module.__name__} has no create_app(): nothing to lint")
        return 2
    needed = [
        name
        for name, parameter in inspect.signature(create_app).parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    if needed:
        print(
            f"{module.__name__}.create_app() needs {', '.join(needed)}: build the app yourself and "
            "pass app.openapi() to coursekit.spectral.lint_openapi (the exercise's tests do)"
        )
        return 2
    try:
        document = create_app().openapi()
    except NotImplementedError:
        print(f"{module.__name__}.create_app() is not written yet: nothing to lint")
        return 2
    findings = spectral.lint_openapi(document)
    print(spectral.format_table(spectral.summary(findings)))
    blocking = spectral.in_scope_errors(findings)
    print(f"\n{len(blocking)} error(s) in scope; rules marked 06 are the security notebook's work.")
    return 1 if blocking else 0


if __name__ == "__main__":
    sys.exit(main())
