"""The answers a column store keeps: bounded in number and in bytes."""

from __future__ import annotations

from services.api.columns import Answers


def test_answers_beyond_their_bytes_drop_the_least_recently_used_first() -> None:
    answers = Answers(count=10, size=120)  # two of these (51 bytes each), not three
    answers.put("a", {"rows": "x" * 40})
    answers.put("b", {"rows": "y" * 40})
    assert answers.get("a") == {"rows": "x" * 40}  # now the most recently used
    answers.put("c", {"rows": "z" * 40})
    assert "b" not in answers and "a" in answers and "c" in answers
    assert answers.nbytes <= 120


def test_answers_beyond_their_count_drop_the_oldest_and_one_too_large_still_stays() -> None:
    answers = Answers(count=2, size=1000)
    for question in ("a", "b", "c"):
        answers.put(question, [question])
    assert len(answers) == 2 and "a" not in answers
    answers.put("big", {"rows": "x" * 5000})
    assert len(answers) == 1 and answers.get("big") == {"rows": "x" * 5000}


def test_an_answer_asked_again_replaces_itself_and_clearing_forgets_every_byte() -> None:
    answers = Answers(count=5, size=1000)
    answers.put("a", [1])
    answers.put("a", [1, 2])
    assert len(answers) == 1 and answers.get("a") == [1, 2]
    assert answers.nbytes == len(b"[1,2]")
    answers.clear()
    assert len(answers) == 0 and answers.nbytes == 0
