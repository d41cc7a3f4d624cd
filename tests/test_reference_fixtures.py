"""Parity with every reference fixture set (cases produced by the original implementation) and the 7B key list."""

from __future__ import annotations

import pytest

from inference.reference_check import check_fixture_set
from modeling.reference_cases import key_list_differences
from scripts.check_reference import main as check_reference_main

from tests.fixture_paths import FIXTURE_SETS, REFERENCE_ROOT

assert FIXTURE_SETS, f"no fixture sets found under {REFERENCE_ROOT}"


@pytest.mark.parametrize("set_dir", FIXTURE_SETS, ids=[p.name for p in FIXTURE_SETS])
def test_every_case_passes(set_dir):
    results = check_fixture_set(set_dir)
    assert {r.name for r in results} >= {"vae", "vit", "train_forward", "understand", "edit", "think_edit", "t2i"}
    failures = {r.name: (r.status, r.message, [(c.name, c.error, c.tolerance) for c in r.checks if not c.passed])
                for r in results if r.status != "PASS"}
    assert not failures


def test_full_size_keys_match_official_list():
    compared, diffs = key_list_differences(REFERENCE_ROOT / "bagel-7b-mot.keys.json",
                                           REFERENCE_ROOT / "bagel-7b-mot.configs.json")
    assert compared == 1223 + 244
    assert diffs == []


def test_check_reference_script_exit_status(tmp_path, capsys):
    assert check_reference_main([str(FIXTURE_SETS[0])]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS") >= 7 and "FAIL" not in out
    assert check_reference_main([str(tmp_path / "missing")]) == 1
