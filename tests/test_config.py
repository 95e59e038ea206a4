import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from watershop_dagster.cli import main
from watershop_dagster.config import ConfigError, init_workspace, load_config


def test_init_creates_commented_config_with_paths_inside_the_workspace(tmp_path):
    config = init_workspace(tmp_path / "ws", shop_id="north", timezone="Europe/Berlin", cameras=["door", "till"])
    text = (tmp_path / "ws" / "watershop.yaml").read_text()
    assert "# " in text
    root = (tmp_path / "ws").resolve()
    for path in (config.lake_root, config.warehouse_dir, config.landing_dir, config.known_people_dir, config.dagster_home):
        assert root in path.parents
    assert config.transactions_landing == root / "landing" / "transactions"
    assert config.footage_root == root / "landing" / "footage"
    assert config.shop("north").cameras == ["door", "till"]
    assert config.shop("north").tz.key == "Europe/Berlin"
    assert (root / "known_people" / "staff").is_dir()


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "watershop.yaml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "bad_key"),
    [
        ("shops:\n  - id: a\n    timezon: UTC\n", "shops.0.timezon"),
        ("shops:\n  - id: a\n    timezone: Mars/Olympus\n", "shops.0.timezone"),
        ("shops:\n  - id: a\n    prices: {30L: 5}\n", "shops.0.prices"),
        ("shops:\n  - id: a\nthresholds:\n  visit_gap_seconds: -1\n", "thresholds.visit_gap_seconds"),
        ("shops: []\n", "shops"),
        ("shops:\n  - id: a\n  - id: a\n", "shop ids must be unique"),
        ("shops:\n  - id: a\npaths:\n  lakes: /x\n", "paths.lakes"),
    ],
)
def test_bad_config_names_the_bad_key(tmp_path, body, bad_key):
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, body))
    assert bad_key in str(error.value)


def test_lake_may_point_elsewhere_but_relative_paths_follow_the_config(tmp_path):
    nas = tmp_path / "nas"
    config = load_config(_write(tmp_path, f"shops:\n  - id: a\npaths:\n  lake: {nas}\n"))
    assert config.lake_root == nas
    assert config.warehouse_dir == tmp_path.resolve() / "warehouse"


def test_cli_init_and_info_json(tmp_path, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(main, ["init", str(tmp_path / "ws"), "--shop", "s1", "--camera", "c1"])
    assert result.exit_code == 0, result.output
    config_file = tmp_path / "ws" / "watershop.yaml"
    result = runner.invoke(main, ["info", "--json", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["lake_root"] == str((tmp_path / "ws" / "lake").resolve())
    assert info["marts_db"].endswith("warehouse/marts.duckdb")
    assert info["dagster_home"] == str((tmp_path / "ws" / ".dagster_home").resolve())
    monkeypatch.setenv("WATERSHOP_CONFIG", str(config_file))
    assert json.loads(runner.invoke(main, ["info", "--json"]).output) == info


def test_cli_reports_bad_config_without_traceback(tmp_path):
    config_file = _write(tmp_path, "shops:\n  - id: a\n    colour: blue\n")
    result = CliRunner().invoke(main, ["info", "--config", str(config_file)])
    assert result.exit_code != 0
    assert "shops.0.colour: unknown key" in result.output


@pytest.mark.parametrize("shop_id", ["007", "123", "yes", "on", "null", "1e3", "2024-01-01"])
def test_init_quotes_ids_that_yaml_would_read_as_numbers_booleans_or_dates(tmp_path, shop_id):
    config = init_workspace(tmp_path, shop_id=shop_id, cameras=["on", "no", "0"])
    assert config.shop_ids == [shop_id] and config.shop(shop_id).name == shop_id
    assert config.shop(shop_id).cameras == ["on", "no", "0"]
    assert f'id: "{shop_id}"' in (tmp_path / "watershop.yaml").read_text()


@pytest.mark.parametrize(
    ("arguments", "bad_key"),
    [
        ({"timezone": "Mars/Olympus"}, "shops.0.timezone"),
        ({"shop_id": "a b"}, "shops.0.id"),
        ({"shop_id": "a\n  - id: b"}, "shops.0.id"),
        ({"cameras": ["door", "door"]}, "camera ids must be unique"),
        ({"cameras": ["a.b"]}, "shops.0.cameras"),
    ],
)
def test_init_validates_before_writing_so_a_corrected_retry_works(tmp_path, arguments, bad_key):
    with pytest.raises(ConfigError) as error:
        init_workspace(tmp_path / "ws", **arguments)
    assert bad_key in str(error.value) and "refusing to write" in str(error.value)
    assert not (tmp_path / "ws").exists()  # nothing written, not even the folder
    config = init_workspace(tmp_path / "ws", shop_id="fixed", timezone="UTC")
    assert config.shop_ids == ["fixed"]
    assert [p.name for p in (tmp_path / "ws").glob(".*.tmp")] == []


def test_init_refuses_to_overwrite_without_force(tmp_path):
    init_workspace(tmp_path, shop_id="first")
    with pytest.raises(ConfigError, match="already exists"):
        init_workspace(tmp_path, shop_id="second")
    assert load_config(tmp_path / "watershop.yaml").shop_ids == ["first"]
    assert init_workspace(tmp_path, shop_id="second", overwrite=True).shop_ids == ["second"]
    result = CliRunner().invoke(main, ["init", str(tmp_path / "cli"), "--timezone", "Nowhere/Town"])
    assert result.exit_code != 0 and "unknown timezone" in result.output
    assert not (tmp_path / "cli" / "watershop.yaml").exists()
