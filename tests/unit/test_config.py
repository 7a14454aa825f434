from __future__ import annotations

from pathlib import Path

import pytest

from outputd.config import load_config
from outputd.configfile import read_config_file
from outputd.errors import ConfigError
from tests.helpers import write_config


def test_defaults_and_relative_paths_resolve_against_the_file(tmp_path: Path):
    config = load_config(write_config(tmp_path))
    assert config.daemon.intake_dir == tmp_path / "intake"
    assert config.daemon.sources_dir == tmp_path / "state" / "sources"
    assert config.store.url == f"sqlite:///{tmp_path / 'state' / 'outputd.db'}"
    assert config.hotfolders["rip1"].path == str(tmp_path / "hot" / "rip1")
    assert config.limits.max_file_bytes == 104_857_600


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OUTPUTD_DAEMON__WORKERS", "7")
    monkeypatch.setenv("OUTPUTD_HOTFOLDERS__RIP1__FILENAME", "{job_id}-x.pdf")
    config = load_config(write_config(tmp_path))
    assert config.daemon.workers == 7
    assert config.hotfolders["rip1"].filename == "{job_id}-x.pdf"


@pytest.mark.parametrize(("extra", "limits", "words"), [
    ("[daemon2]\nx = 1\n", "", "daemon2 is not a known key"),
    ("", "max_file_bytes = \"big\"", "limits.max_file_bytes"),
    ("", "max_file_bytez = 1", "limits.max_file_bytez is not a known key"),
    ("[cleanup]\nkeep_sources_days = -1\n", "", "cleanup.keep_sources_days"),
])
def test_bad_keys_are_named(tmp_path: Path, extra: str, limits: str, words: str):
    with pytest.raises(ConfigError, match=words):
        load_config(write_config(tmp_path, extra=extra, limits=limits))


def test_unknown_template_field_and_unknown_route_target(tmp_path: Path):
    bad_template = '[hotfolders.rip1]\nkind = "local"\npath = "h"\nfilename = "{colour}.pdf"\n'
    with pytest.raises(ConfigError, match=r"rip1.filename uses unknown field \{colour\}"):
        load_config(write_config(tmp_path, hotfolders=bad_template))
    two = '[[routes]]\nmatch = {test_mode = true}\nskip = true\n\n[[routes]]\nto = ["nope"]\n'
    with pytest.raises(ConfigError,
                       match=r"\[\[routes\]\] number 2: to names unknown hot folder 'nope'"):
        load_config(write_config(tmp_path, routes=two))


def test_routes_are_counted_from_1_in_errors_and_in_the_log(tmp_path: Path):
    bogus = '[[routes]]\nmatch = {}\nto = ["rip1"]\n\n[[routes]]\nbogus = 1\nskip = true\n'
    with pytest.raises(ConfigError, match=r"\[\[routes\]\] number 2: bogus is not a known key"):
        load_config(write_config(tmp_path, routes=bogus))


def test_a_hot_folder_missing_its_path_is_named(tmp_path: Path):
    hot = '[hotfolders.rip1]\nkind = "local"\nfilename = "{job_id}.pdf"\n'
    with pytest.raises(ConfigError, match="hotfolders.rip1.path is required"):
        load_config(write_config(tmp_path, hotfolders=hot))


@pytest.mark.parametrize("hot_path", ["intake/hot", "."])
def test_intake_and_hot_folder_must_not_overlap(tmp_path: Path, hot_path: str):
    hot = f'[hotfolders.rip1]\nkind = "local"\npath = "{hot_path}"\nfilename = "x.pdf"\n'
    with pytest.raises(ConfigError, match="overlap"):
        load_config(write_config(tmp_path, hotfolders=hot))


def test_a_hot_folder_mount_resolves_and_must_hold_the_folder(tmp_path: Path):
    hot = ('[hotfolders.rip1]\nkind = "local"\npath = "share/in"\nmount = "share"\n'
           'filename = "x.pdf"\n')
    config = load_config(write_config(tmp_path, hotfolders=hot))
    assert config.hotfolders["rip1"].mount == str(tmp_path / "share")
    outside = hot.replace('mount = "share"', 'mount = "other"')
    with pytest.raises(ConfigError, match="hotfolders.rip1.path .* is not inside "
                                          "hotfolders.rip1.mount"):
        load_config(write_config(tmp_path, hotfolders=outside))


def test_unreadable_files_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[daemon\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_environment_lists_and_unknown_keys(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OUTPUTD_NOTIFY__EMAIL__TO", '["a@x.example", "b@x.example"]')
    monkeypatch.setenv("OUTPUTD_CONFIG", "ignored.toml")
    config = load_config(write_config(tmp_path))
    assert config.notify.email.to == ["a@x.example", "b@x.example"]
    monkeypatch.setenv("OUTPUTD_DAEMON__WROKERS", "3")
    with pytest.raises(ConfigError, match="environment overrides: daemon.wrokers is not a known"):
        load_config(write_config(tmp_path))


@pytest.mark.parametrize(("section", "line", "key"), [
    ("daemon", 'workers = "two"', "daemon.workers"),
    ("daemon", "workers = 0", "daemon.workers"),
    ("daemon", 'log_format = "xml"', "daemon.log_format"),
    ("daemon", "stop_grace_s = -1", "daemon.stop_grace_s"),
    ("daemon", "state_dir = 5", "daemon.state_dir"),
    ("store", "lease_s = 0", "store.lease_s"),
    ("store", 'url = "mysql://x"', "store.url"),
    ("retry", "max_attempts = 0", "retry.max_attempts"),
    ("retry", 'initial_s = "soon"', "retry.initial_s"),
    ("preflight", 'cmyk_only = "maybe"', "preflight.cmyk_only"),
    ("metrics", "listen = 9464", "metrics.listen"),
    ("daemon", "nodeid = 1", "daemon.nodeid is not a known key"),
])
def test_each_key_with_a_wrong_value_is_named(tmp_path: Path, section: str, line: str,
                                              key: str):
    config = write_config(tmp_path)
    name = line.split("=")[0].strip()
    lines = [x for x in config.read_text().splitlines() if x.split("=")[0].strip() != name]
    text = "\n".join(lines) + "\n"
    header = f"[{section}]\n"
    text = text.replace(header, header + line + "\n", 1) if header in text else (
        f"{header}{line}\n\n" + text)
    config.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(config)


@pytest.mark.parametrize(("hot", "words"), [
    ('[hotfolders.x]\nkind = "ftp"\npath = "h"\nfilename = "a.pdf"\n', "hotfolders.x"),
    ('[hotfolders.x]\nkind = "sftp"\npath = "/h"\nfilename = "a.pdf"\nhost = "h"\n'
     'username = "u"\nknown_hosts = "k"\n', "key_file, password_file"),
    ('[hotfolders.x]\nkind = "local"\npath = "h"\nfilename = "{job_id"\n', "not a valid"),
    ('[hotfolders."bad name"]\nkind = "local"\npath = "h"\nfilename = "a.pdf"\n',
     "hotfolders"),
])
def test_bad_hot_folders_are_named(tmp_path: Path, hot: str, words: str):
    routes = '[[routes]]\nskip = true\n'
    with pytest.raises(ConfigError, match=words):
        load_config(write_config(tmp_path, hotfolders=hot, routes=routes))


@pytest.mark.parametrize(("store", "env"), [
    ("", {}),
    ('url = "db/jobs.sqlite"', {}),
    ('url = "sqlite:///db/jobs.sqlite"', {}),
    ("", {"OUTPUTD_DAEMON__STATE_DIR": "elsewhere"}),
    ("", {"OUTPUTD_STORE__URL": "postgresql://u@127.0.0.1/outputd"}),
])
def test_read_only_commands_find_the_store_the_daemon_uses(tmp_path: Path, monkeypatch,
                                                           store: str, env: dict[str, str]):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("[store]\n", f"[store]\n{store}\n", 1))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if store == 'url = "db/jobs.sqlite"':
        with pytest.raises(ConfigError, match="store.url must start with"):
            load_config(path)
        with pytest.raises(ConfigError, match="store.url must start with"):
            read_config_file(path).quick_store_url()
        return
    assert read_config_file(path).quick_store_url() == load_config(path).store.url


def test_read_only_store_lookup_names_a_bad_key(tmp_path: Path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('state_dir = "state"', "state_dir = 3"))
    with pytest.raises(ConfigError, match="daemon.state_dir must be a string"):
        read_config_file(path).quick_store_url()


def test_a_variable_that_is_no_config_path_is_left_alone_a_misspelt_one_is_refused(
        tmp_path: Path, monkeypatch):
    from outputd.config import Config
    from outputd.configfile import SECTIONS

    assert set(Config.model_fields) - {"source"} == SECTIONS
    monkeypatch.setenv("OUTPUTD_BIN", "/opt/outputd/bin/outputd")  # a wrapper script's
    monkeypatch.setenv("OUTPUTD_LIMITS__JOB_TIMEOUT_S", "42")
    config = load_config(write_config(tmp_path))
    assert config.limits.job_timeout_s == 42
    monkeypatch.setenv("OUTPUTD_LIMITS__MAX_FILE_BYTE", "1")
    with pytest.raises(ConfigError, match="limits.max_file_byte"):
        load_config(write_config(tmp_path))


def test_lists_and_nested_tables_come_from_the_environment_too(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OUTPUTD_NOTIFY__EMAIL__TO", '["ops@shop.example", "night@shop.example"]')
    monkeypatch.setenv("OUTPUTD_HOTFOLDERS__RIP1__TICKET", "xml")
    config = load_config(write_config(tmp_path))
    assert config.notify.email.to == ["ops@shop.example", "night@shop.example"]
    assert config.hotfolders["rip1"].ticket == "xml"
    assert config.hotfolders["rip1"].filename == "{order_id}_{job_id}_{sku}_q{quantity}.pdf"


@pytest.mark.parametrize("name", ["outputd.toml", "outputd.service.toml"])
def test_every_bundled_hot_folder_has_a_route(name: str):
    config = load_config(Path(__file__).parents[2] / "config" / name)
    routed = {folder for route in config.routes for folder in route.to}
    assert routed == set(config.hotfolders)
