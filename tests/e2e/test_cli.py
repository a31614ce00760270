"""`fedshare demo` as a user runs it, and its errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from offchain.cli import app


def test_demo_prints_the_round_table_and_writes_its_report(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--rounds", "1", "--owners", "1",
                                      "--devices-per-owner", "3", "--max-participants", "3",
                                      "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "final accuracy" in result.output
    assert "claimed" in result.output
    (report_path,) = tmp_path.glob("runs/*/report.json")
    report = json.loads(report_path.read_text())
    assert len(report["rounds"]) == 1
    assert report["rounds"][0]["reward_paid"] == 5 * 10**17
    assert f"{report['final_accuracy']:.2%}" in result.output


def test_a_bad_option_is_a_clear_error_with_its_exit_code(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--owners", "1", "--devices-per-owner", "2",
                                      "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "ConfigError" in result.output
    assert "2 devices cannot fill min_participants=3" in result.output


def test_experiment_chain_runs_rows_through_the_contracts_and_the_simulation(tmp_path):
    result = CliRunner().invoke(app, ["experiment", "chain", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "quick" / "chain.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| mnist")]
    assert len(rows) == 2
    assert "0 of 1" in rows[1]  # the sign-flipper's update was not accepted on chain
    chain_acc, sim_acc = (float(v) for v in rows[0].split("|")[2:4])
    assert abs(chain_acc - sim_acc) < 3.0 and chain_acc > 80


def test_experiment_writes_a_suites_table_and_rejects_unknown_suites(tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("FEDSHARE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["experiment", "regression", "--quick", "--jobs", "1",
                                      "--out", str(tmp_path / "tables")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tables" / "quick" / "regression.md").exists()
    assert (tmp_path / "tables" / "quick" / "regression.png").exists()
    assert not (tmp_path / "tables" / "quick" / "runs").exists()
    # The runs are cached under the project home, one file per scenario.
    (code,) = (tmp_path / "home" / "cache" / "experiments").iterdir()
    assert len(list(code.glob("*.json"))) == 13
    result = CliRunner().invoke(app, ["experiment", "fast", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2
    assert "unknown suite 'fast'" in result.output
