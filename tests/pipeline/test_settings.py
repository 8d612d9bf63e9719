"""Settings: defaults, YAML file, environment precedence, errors naming where and what."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import config
from pipeline.settings import ConfigError, Settings, load_settings

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_defaults_file_and_env_precedence(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = isolated_env / "cfg"
    cfg.mkdir()
    (cfg / "yuqing.yaml").write_text("bus: kafka\nmetrics_port: 9500\n", encoding="utf-8")
    monkeypatch.setenv("YUQING_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("YUQING_METRICS_PORT", "9600")
    s = load_settings()
    assert s.bus == "kafka"  # from the file
    assert s.metrics_port == 9600  # env beats file
    assert s.web_bind == "127.0.0.1:8000"  # default
    assert s.resolved_database_url.startswith("sqlite:///")
    assert s.resolved_database_url.endswith("var/yuqing.sqlite3")


def test_file_error_names_file_and_key(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = isolated_env / "cfg"
    cfg.mkdir()
    (cfg / "yuqing.yaml").write_text("web_bind: nowhere\nbogus: 1\n", encoding="utf-8")
    monkeypatch.setenv("YUQING_CONFIG_DIR", str(cfg))
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert f"{cfg / 'yuqing.yaml'}: web_bind: " in text and "host:port" in text
    assert "bogus" in text


def test_env_error_names_variable(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_BUS", "rabbit")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "environment: YUQING_BUS:" in str(err.value)


def test_stage_threads_are_bounded_by_the_connection_pool(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YUQING_STAGE_THREADS", "8")
    assert load_settings().stage_threads == 8
    monkeypatch.setenv("YUQING_STAGE_THREADS", "9")
    with pytest.raises(ConfigError, match="YUQING_STAGE_THREADS: Input should be less than"):
        load_settings()


def test_repository_config_is_valid() -> None:
    assert config.check(REPO_CONFIG) == []


def test_department_catalog_is_complete(isolated_env: Path) -> None:
    depts = config.departments(load_settings())
    assert len(depts.departments) == 39
    assert depts.triage == "gov-office"
    assert {"environment", "education", "urban-enforcement", "subdistricts"} <= depts.ids()


def test_config_check_names_file_key_and_problem(tmp_path: Path) -> None:
    for name in ("departments.yaml", "sla.yaml"):
        (tmp_path / name).write_text(
            (REPO_CONFIG / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    sla = (tmp_path / "sla.yaml").read_text(encoding="utf-8").replace("within: 2h", "within: soon")
    (tmp_path / "sla.yaml").write_text(sla, encoding="utf-8")
    depts = (tmp_path / "departments.yaml").read_text(encoding="utf-8")
    (tmp_path / "departments.yaml").write_text(
        depts + "  - id: education\n    name: 重复\n    topic: 教育\n", encoding="utf-8"
    )
    (tmp_path / "broken.yaml").write_text("a: [1, 2\n", encoding="utf-8")
    problems = config.check(tmp_path)
    assert any(
        p.startswith(f"{tmp_path / 'sla.yaml'}: severities.high.ack.within:") and "soon" in p
        for p in problems
    )
    assert any("departments.yaml" in p and "'education' appears twice" in p for p in problems)
    assert any("broken.yaml: not valid YAML" in p for p in problems)


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    """The README's Configuration table is what operators read: no setting missing, no
    default out of date."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = {line.split(" | ")[0]: line for line in readme.splitlines() if line.startswith("| `")}
    for name, field in Settings.model_fields.items():
        row = rows.get(f"| `YUQING_{name.upper()}`")
        assert row is not None, f"YUQING_{name.upper()} is not in the README's table"
        default = "—" if field.default is None else f"`{field.default}`"
        assert row.split(" | ")[1] == default, row
