"""experiments/pet_compare.py: the row names of the sweeps and the `petsum train` command each
row runs (the README's comparison tables are reproduced by this driver)."""

import sys
from pathlib import Path

import pytest
from conftest import REPO, load_benchmark


@pytest.fixture(scope="module")
def driver():
    sys.path.insert(0, str(REPO / "experiments"))
    return load_benchmark("pet_compare")


@pytest.mark.parametrize(
    "name, spec",
    [
        ("direct", ("direct", None, None, None)),
        ("usm-inter", ("usm", "inter", None, None)),
        ("dsm-ent_pre", ("dsm", "ent_pre", None, None)),
        ("usm-ent-b1.2", ("usm", "ent", "1.2", None)),
        ("usm-inter-g0.5", ("usm", "inter", None, "0.5")),
        ("usm-ent-b0.8-g2", ("usm", "ent", "0.8", "2")),
    ],
)
def test_row_names_parse(driver, name, spec):
    assert driver.row_spec(name) == spec


@pytest.mark.parametrize(
    "name", ["direct-inter", "usm", "usm-foo", "usm-ent-b", "usm-ent-g1-b1", "xsm-inter", "usm-inter "]
)
def test_bad_row_names_are_refused(driver, name):
    assert driver.row_spec(name) is None


def _flag(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


@pytest.mark.slow
def test_a_sweep_row_trains_with_its_beta_gamma_source_and_the_direct_scorer(driver, tmp_path):
    (tmp_path / "direct").mkdir()
    (tmp_path / "direct" / "ases.json").write_text('{"roles": {"model": "model/best_bleu"}}')
    args = driver.train_args(
        "usm-ent-b1.4-g2", tmp_path / "split", tmp_path, "c.yaml", ["train.threads=1"], source="finding"
    )
    assert args[:2] == ["petsum", "train"]
    assert (_flag(args, "--method"), _flag(args, "--strategy"), _flag(args, "--beta"), _flag(args, "--gamma")) == (
        "usm",
        "ent",
        "1.4",
        "2",
    )
    assert _flag(args, "--source") == "finding" and _flag(args, "--out") == str(tmp_path / "usm-ent-b1.4-g2")
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert sets == [f"segment.scorer={tmp_path / 'direct' / 'model' / 'best_bleu'}", "train.threads=1"]


def test_direct_and_ent_pre_rows_need_no_scorer(driver, tmp_path):
    for name in ("direct", "dsm-ent_pre", "usm-inter"):
        args = driver.train_args(name, tmp_path / "split", tmp_path, "c.yaml", [])
        assert "--set" not in args and "--source" not in args and "--beta" not in args


def test_an_ent_row_brings_in_the_direct_run_it_is_scored_by(driver, tmp_path):
    assert driver.pick_rows("usm-ent-b1.2, usm-inter", driver.row_spec, tmp_path, driver.ROW_FORMS) == [
        "direct",
        "usm-ent-b1.2",
        "usm-inter",
    ]
    assert driver.pick_rows("usm-inter-g2", driver.row_spec, tmp_path, driver.ROW_FORMS) == ["usm-inter-g2"]
    with pytest.raises(SystemExit, match="unknown rows"):
        driver.pick_rows("usm-inter,usm-banana", driver.row_spec, tmp_path, driver.ROW_FORMS)


def test_the_table_shows_er_where_the_metrics_have_it(driver):
    metrics = {"bleu": 1.0, "rouge1": 2.0, "rouge2": 3.0, "rougeL": 4.0, "mr": 5.0}
    lines = driver.table(
        [{"name": "old", **metrics}, {"name": "new", **metrics, "er": 6.0, "tokens": 2e6, "train_s": 60}]
    ).splitlines()
    assert lines[2] == "| old | 1.0 | 2.0 | 3.0 | 4.0 | 5.0 | – | – | – |"
    assert lines[3] == "| new | 1.0 | 2.0 | 3.0 | 4.0 | 5.0 | 6.0 | 2.00M | 1.0 min |"


def test_a_step_runs_the_console_script_beside_the_interpreter(driver):
    # the venv's bin folder need not be on PATH: `venv/bin/python experiments/pet_compare.py` works
    if not (Path(sys.executable).parent / "petsum").is_file():
        pytest.skip("petsum is not installed beside this interpreter")
    assert driver.executable("petsum") == str(Path(sys.executable).parent / "petsum")


def test_a_failing_step_ends_with_one_line_and_writes_no_output(driver, tmp_path, capsys):
    out = tmp_path / "m.json"
    with pytest.raises(SystemExit) as e:
        driver.run(["python", "-c", "print('partial'); raise SystemExit(3)"], stdout=out)
    assert str(e.value).startswith("error: step failed (exit 3): python -c")
    assert not out.exists()  # so a rerun does the step again instead of skipping it
    with pytest.raises(SystemExit) as e:
        driver.run(["no-such-command-petsum"])
    assert str(e.value).startswith("error: no-such-command-petsum not found")
