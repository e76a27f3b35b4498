"""Every notebook has a self-check quiz, and the instructor guide has its answer key.

A quiz is docs/quizzes/NN-<notebook slug>.md: a link to its notebook, then 4 to 6
questions, each a heading "## N. <question>" followed by options "- a) <text>" with
consecutive letters. The answers live only in the instructor guide's "Quiz answer key":
one subsection per quiz ("### Quiz NN <title>") with one line "N. **x**: <why>" per question.
The list of notebooks comes from the notebooks folder and from coursekit/timings.toml,
so a notebook that is planned (in timings.toml) but not written yet needs its quiz too.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from coursekit import paths

DOCS = paths.ROOT / "docs"
QUIZ_DIR = DOCS / "quizzes"
GUIDE = DOCS / "instructor-guide.md"
LETTERS = "abcd"

QUESTION = re.compile(r"^## (\d+)\. (\S.*)$")
OPTION = re.compile(r"^- ([a-z])\) (\S.*)$")
ANSWER = re.compile(r"^(\d+)\. \*\*([a-z])\*\*: (\S.*)$")
KEY_HEADING = re.compile(r"^### Quiz (\d\d) \S")
# A quiz is learner-facing: nothing in it may give an answer away.
ANSWER_LEAK = re.compile(r"(?i)\b(answer|correct|solution)\s*[:=]|\*\*[a-d]\*\*|\([a-d]\) is right")


@dataclass(frozen=True)
class Question:
    number: int
    text: str
    options: dict[str, str]


def notebook_numbers() -> set[str]:
    """Notebooks written (notebooks/NN-*.ipynb) and planned (entries of timings.toml)."""
    written = {path.name[:2] for path in paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb")}
    timings = tomllib.loads((paths.ROOT / "coursekit" / "timings.toml").read_text(encoding="utf-8"))
    planned = {str(entry["number"]) for entry in timings["notebook"]}
    return written | planned


def quiz_files() -> dict[str, Path]:
    return {path.name[:2]: path for path in sorted(QUIZ_DIR.glob("[0-9][0-9]-*.md"))}


def parse_quiz(path: Path) -> list[Question]:
    """The questions in file order; raises AssertionError on a line that breaks the format."""
    questions: list[Question] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if heading := QUESTION.match(line):
            questions.append(Question(int(heading.group(1)), heading.group(2), {}))
        elif option := OPTION.match(line):
            assert questions, f"{path.name}: option before the first question: {line!r}"
            letter, text = option.groups()
            options = questions[-1].options
            assert letter not in options, f"{path.name}: question {questions[-1].number} repeats {letter})"
            options[letter] = text
        else:
            assert not line.startswith("## "), f"{path.name}: a section that is not a question: {line!r}"
    return questions


def answer_key() -> dict[str, list[tuple[int, str, str]]]:
    """The guide's answer key: per quiz number, its (question, letter, why) lines in order."""
    text = GUIDE.read_text(encoding="utf-8")
    assert "\n## Quiz answer key\n" in text, "the instructor guide has no '## Quiz answer key' section"
    section = text.split("\n## Quiz answer key\n", 1)[1].split("\n## ", 1)[0]
    key: dict[str, list[tuple[int, str, str]]] = {}
    current: str | None = None
    for line in section.splitlines():
        if heading := KEY_HEADING.match(line):
            current = heading.group(1)
            assert current not in key, f"the answer key has two sections for quiz {current}"
            key[current] = []
        elif answer := ANSWER.match(line):
            assert current is not None, f"an answer before the first quiz heading: {line!r}"
            key[current].append((int(answer.group(1)), answer.group(2), answer.group(3)))
    return key


NUMBERS = sorted(notebook_numbers() | set(quiz_files()))


def test_every_notebook_has_one_quiz() -> None:
    """Each notebook written or planned has exactly one quiz file."""
    quizzes = quiz_files()
    assert len(quizzes) == len(list(QUIZ_DIR.glob("[0-9][0-9]-*.md"))), "two quizzes share a number"
    assert sorted(notebook_numbers() - set(quizzes)) == []


def test_every_quiz_belongs_to_a_notebook() -> None:
    """A quiz's notebook is written (notebooks/) or planned (an entry in coursekit/timings.toml)."""
    assert sorted(set(quiz_files()) - notebook_numbers()) == []


@pytest.mark.parametrize("number", NUMBERS)
def test_quiz_is_well_formed(number: str) -> None:
    """4-6 questions numbered 1..n, each with 3-4 distinct options lettered a, b, c(, d)."""
    path = quiz_files().get(number)
    assert path is not None, f"notebook {number} has no quiz in docs/quizzes/"
    questions = parse_quiz(path)
    assert 4 <= len(questions) <= 6, f"{path.name}: {len(questions)} questions"
    assert [q.number for q in questions] == list(range(1, len(questions) + 1))
    for question in questions:
        letters = "".join(question.options)
        where = f"{path.name} question {question.number}"
        assert 3 <= len(letters) <= 4, f"{where}: {len(letters)} options, expected 3 or 4"
        assert letters == LETTERS[: len(letters)], f"{where}: options {letters!r}, expected a, b, c(, d)"
        normalised = {" ".join(text.lower().split()) for text in question.options.values()}
        assert len(normalised) == len(letters), f"{where}: repeated option"
        assert question.text.endswith("?"), f"{where} is not a question"
    leaks = [line for line in path.read_text(encoding="utf-8").splitlines() if ANSWER_LEAK.search(line)]
    assert not leaks, f"{path.name} gives answers away: {leaks}"


@pytest.mark.parametrize("number", NUMBERS)
def test_quiz_links_its_notebook(number: str) -> None:
    """The quiz links notebooks/<its own file name>.ipynb, the notebook of the same number once written."""
    path = quiz_files()[number]
    assert f"](../../notebooks/{path.stem}.ipynb)" in path.read_text(encoding="utf-8")
    written = sorted(paths.NOTEBOOKS_DIR.glob(f"{number}-*.ipynb"))
    if written:
        assert [nb.stem for nb in written] == [path.stem], (
            f"quiz {path.name} must be named after notebook {written[0].name}"
        )


@pytest.mark.parametrize("number", NUMBERS)
def test_answer_key_has_one_valid_answer_per_question(number: str) -> None:
    """The guide answers every question exactly once, with a letter among its options and a reason."""
    path = quiz_files()[number]
    questions = parse_quiz(path)
    answers = answer_key().get(number)
    assert answers is not None, f"the instructor guide's answer key has no '### Quiz {number} ...' section"
    assert [n for n, _, _ in answers] == [q.number for q in questions], (
        f"quiz {number}: the key answers questions {[n for n, _, _ in answers]}, "
        f"the quiz has {[q.number for q in questions]}"
    )
    for question, (_, letter, why) in zip(questions, answers, strict=True):
        assert letter in question.options, f"quiz {number} question {question.number}: no option {letter})"
        assert len(why.split()) >= 3, f"quiz {number} question {question.number}: say why in a line"


def test_answer_key_has_no_orphan_sections() -> None:
    """Every section of the answer key belongs to an existing quiz."""
    assert set(answer_key()) <= set(quiz_files())


@pytest.mark.parametrize("number", NUMBERS)
def test_quiz_is_linked_from_the_guide_and_the_index(number: str) -> None:
    """The instructor guide and docs/quizzes/README.md both link the quiz."""
    name = quiz_files()[number].name
    assert f"](quizzes/{name})" in GUIDE.read_text(encoding="utf-8")
    assert f"]({name})" in (QUIZ_DIR / "README.md").read_text(encoding="utf-8")
