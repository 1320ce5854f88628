"""mwp's text handling without models: GSM8K → CoT, splitting around numbers, answer extraction,
and loading problem files (GSM8K style, plain numeric answers, bad records)."""

import json

import pytest

from mwp.adapter import MwpAdapter
from mwp.answers import canonical, extract_answer, normalize_number
from mwp.cot import PROMPT_SUFFIX, prompt, strip_annotations, to_cot
from mwp.data import BadRecord, load_problems, read_records
from shared.pipeline import split_examples
from shared.text import split_subsentences
from shared.textio import InputError

SOLUTION = "Janet buys 3 boxes of 12 = <<3*12=36>>36 pens.\nShe pays 36*0.5 = $<<36*0.5=18>>18.\n#### 18"


# --- GSM8K solution → CoT ------------------------------------------------------------------------


def test_cot_strips_annotations_and_ends_with_the_stop_sentence():
    assert to_cot(SOLUTION) == "Janet buys 3 boxes of 12 = 36 pens. She pays 36*0.5 = $18. The answer is 18."


def test_cot_keeps_annotations_in_calculator_mode():
    assert to_cot(SOLUTION, calculator=True) == (
        "Janet buys 3 boxes of 12 = <<3*12=36>>36 pens. She pays 36*0.5 = $<<36*0.5=18>>18. The answer is 18."
    )
    assert strip_annotations(to_cot(SOLUTION, calculator=True)) == to_cot(SOLUTION)


def test_cot_one_sentence_per_line_with_clean_spacing():
    solution = "First  she walks 2 miles\n\nThen 3 more:\n  Total 5!\n#### 5"
    assert to_cot(solution) == "First she walks 2 miles. Then 3 more. Total 5! The answer is 5."


def test_cot_final_number_is_canonical_and_the_stop_phrase_only_ends_the_target():
    cot = to_cot("The answer is not obvious.\n1000+250 = 1250\n#### 1,250")
    assert cot.endswith("The answer is 1250.")
    assert cot.count("The answer is") == 1  # a step never carries the stop sign
    assert to_cot("x\n#### 2.50").endswith("The answer is 2.5.")


@pytest.mark.parametrize("bad", ["no final line", "steps\n#### many"])
def test_cot_refuses_a_solution_without_a_final_number(bad):
    with pytest.raises(ValueError):
        to_cot(bad)


def test_prompt_is_one_line_with_the_papers_trigger():
    assert prompt("  How many  pens\n are left? ") == "How many pens are left?" + PROMPT_SUFFIX
    assert PROMPT_SUFFIX == " Let's think step by step"


# --- splitting never breaks a number -------------------------------------------------------------


@pytest.mark.parametrize("number", ["1,000", "2.5", "$3.50", "1/2", "3:30", "1,234,567.89", ".5", "-4.25"])
def test_split_never_breaks_a_number(number):
    text = f"She has {number}, then {number} more. At last {number}. The answer is 7."
    pieces = split_subsentences(text)
    assert pieces == [f"She has {number},", f"then {number} more.", f"At last {number}.", "The answer is 7."]
    assert MwpAdapter().split_target(text) == pieces


def test_split_keeps_the_stop_sentence_whole_and_joins_back():
    adapter = MwpAdapter()
    target = to_cot(SOLUTION, calculator=True)
    pieces = adapter.split_target(target)
    assert pieces[-1] == "The answer is 18."
    assert adapter.join(pieces) == target


def test_split_never_cuts_an_annotation():
    # shared.text would break after `2.` followed by a space; an annotation must stay whole, or a
    # segment would end inside `<<…` and the calculator would never see the whole expression.
    text = "She pays <<2. 5=7>>7 dollars, then leaves."
    assert split_subsentences(text)[0] == "She pays <<2."
    assert MwpAdapter().split_target(text) == ["She pays <<2. 5=7>>7 dollars,", "then leaves."]


# --- answer extraction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("So 2+3 = 5. The answer is 5.", "5"),
        ("The answer is 5.0.", "5"),
        ("The answer is 1,000.", "1000"),
        ("The answer is -3.", "-3"),
        ("The answer is .5", "0.5"),
        ("The answer is $1,234.50.", "1234.5"),
        ("The answer is -$5.", "-5"),
        ("The answer is: 42 apples.", "42"),
        ("The answer is 3/4.", "0.75"),
        ("The answer is 1/3.", "1/3"),
        ("The answer is 4. No wait. The answer is 6.", "6"),  # the LAST one counts
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "She has 5 apples.",  # a number, but no stop sentence: never a made-up answer
        "The answer is 5. Then the answer is unclear. The answer is",  # the last stop sentence has no number
        "The answer is five.",
        "The answer is 1/0.",
        "the answer is 5.",  # only the stop phrase the model was trained to write
        "The answer is " + "9" * 100,  # a model stuck writing digits has no answer
    ],
)
def test_no_extractable_answer_is_none(text):
    assert extract_answer(text) is None


def test_answers_compare_numerically():
    same = ["5", "5.0", "5.00", "$5", " 5 ", "10/2", 5, 5.0]
    assert {normalize_number(v) for v in same} == {"5"}
    assert normalize_number("1,000") == normalize_number(1000) == normalize_number(1000.0) == "1000"
    assert normalize_number(0.1) == "0.1"  # exact decimal, not the binary double
    assert normalize_number("0.1") != normalize_number("0.10000001")


@pytest.mark.parametrize(
    "value", [True, None, float("nan"), float("inf"), "", "abc", "12 apples", "1.2.3", [4], {"n": 4}]
)
def test_non_numbers_are_no_gold(value):
    assert normalize_number(value) is None


def test_canonical_forms():
    from fractions import Fraction

    assert [canonical(Fraction(x)) for x in ("-1/4", "1234.5", "-7", "2/3")] == ["-0.25", "1234.5", "-7", "2/3"]


def test_adapter_scores_clean_reasoning():
    adapter = MwpAdapter()
    refs = ["He has 2+3 = 5 apples. The answer is 5.", "It is 1000. The answer is 1000."]
    preds = ["He has 2+3 = <<2+3=5>>5 apples. The answer is 5.0.", "It is 999. The answer is"]
    m = adapter.score(preds, refs)
    assert (m["n"], m["correct"], m["no_answer"], m["accuracy"]) == (2, 1, 1, 50.0)
    assert adapter.extract_answer("<<1+1=2>>2. The answer is <<4=4>>4.") == "4"
    clean = adapter.score([strip_annotations(p) for p in preds], refs)
    assert clean["bleu"] == m["bleu"]  # annotations never count in BLEU


# --- loading problem files -----------------------------------------------------------------------


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_gsm8k_and_numeric_records(tmp_path):
    f = _jsonl(
        tmp_path / "m.jsonl",
        [
            {"question": "Q1  with  spaces?", "answer": SOLUTION},
            {"id": "x", "question": "Q2?", "answer": 42},
            {"question": "Q3?", "answer": "$1,250.50"},
        ],
    )
    a, b, c = load_problems(f)
    assert a.question == "Q1 with spaces?" + PROMPT_SUFFIX and a.target == to_cot(SOLUTION) and a.id == "1"
    assert (b.id, b.target) == ("x", "The answer is 42.")  # other math sets: no CoT to learn
    assert c.target == "The answer is 1250.5."
    assert load_problems(f, calculator=True)[0].target == to_cot(SOLUTION, calculator=True)


def test_a_folder_means_its_split_file(tmp_path):
    _jsonl(tmp_path / "train.jsonl", [{"question": "A?", "answer": 1}])
    _jsonl(tmp_path / "test.jsonl", [{"question": "B?", "answer": 2}, {"question": "C?", "answer": 3}])
    assert len(load_problems(tmp_path)) == 1 and len(read_records(tmp_path)) == 2


def test_unusable_records_are_reported_not_fatal_when_solving(tmp_path):
    f = _jsonl(
        tmp_path / "m.jsonl",
        [
            {"question": "  ", "answer": 1},
            {"question": 7, "answer": 1},
            {"question": "Q?", "answer": "seven"},
            {"question": "Q?", "answer": "steps\n#### ?"},
            {"question": "Q?", "answer": 7},
        ],
    )
    records = read_records(f)
    assert [type(r).__name__ for r in records] == ["BadRecord"] * 4 + ["Example"]
    assert records[0] == BadRecord("1", "the question is empty") and records[1].error == "the question is not text"
    with pytest.raises(InputError, match="record 1: the question is empty"):
        load_problems(f)  # training needs every record


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"question": "Q?"}'], "no 'answer' field"),
        (['{"answer": 3}'], "no 'question' field"),
        (['{"question": "Q?", "answer": 3}', "{not json"], "line 2 is not valid JSON"),
        (["[1, 2]"], "not a JSON object"),
        ([""], "no problems"),
    ],
)
def test_bad_files_stop_the_load(tmp_path, lines, message):
    f = _jsonl(tmp_path / "m.jsonl", lines)
    with pytest.raises(InputError, match=message):
        read_records(f)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_records(tmp_path / "nope.jsonl")


def test_validation_split_is_seeded_by_question_not_file_order(tmp_path):
    rows = [{"question": f"How many apples does child {i} have?", "answer": i} for i in range(60)]
    forward = load_problems(_jsonl(tmp_path / "a.jsonl", rows))
    backward = load_problems(_jsonl(tmp_path / "b.jsonl", rows[::-1]))
    val_a = {ex.question for ex in split_examples(forward, 0.2, 42)[1]}
    val_b = {ex.question for ex in split_examples(backward, 0.2, 42)[1]}
    assert val_a == val_b and 0 < len(val_a) < 60
    assert val_a != {ex.question for ex in split_examples(forward, 0.2, 7)[1]}  # the seed picks it
