"""Tests of billingcenter.config and billingcenter.catalogue."""

from datetime import timedelta
from pathlib import Path

import pytest

from billingcenter.catalogue import load_catalogue
from billingcenter.config import DEFAULT_ENDPOINT, ConfigError, load_config

CONF = Path(__file__).resolve().parent.parent / "conf"


class TestLoadConfig:
    def test_defaults(self):
        """No file: loopback endpoint, SQLite, no callers, the repo's catalogue."""
        config = load_config(None)
        assert config.endpoint == DEFAULT_ENDPOINT
        assert config.database_url == ""
        assert not config.auth_enabled
        assert config.catalogue_file == CONF / "catalogue.toml"

    def test_example_file_is_valid(self):
        """The shipped example config loads and matches the defaults it documents."""
        config = load_config(CONF / "billingcenter.ini")
        assert config.endpoint == DEFAULT_ENDPOINT
        assert config.max_body == 1048576
        assert config.limits.max_future == timedelta(days=1)
        assert config.rating.lookback == load_config(None).rating.lookback == 7
        assert config.outbox.keep_delivered == load_config(None).outbox.keep_delivered == 30
        assert config.billing.workers == load_config(None).billing.workers == 2

    def test_callers_and_paths(self, tmp_path):
        """Caller sections are read; relative paths are relative to the file."""
        ini = tmp_path / "b.ini"
        ini.write_text(
            "[database]\ndata_dir = d\n[caller:order]\npassword_hash = h\n"
            "methods = installOrder, updateOrderState\n"
        )
        config = load_config(ini)
        assert config.data_dir == tmp_path / "d"
        assert config.callers[0].name == "order"
        assert config.callers[0].methods == {"installOrder", "updateOrderState"}

    @pytest.mark.parametrize("text, message", [
        ("[server]\nmax_body = lots\n", "max_body must be an integer"),
        ("[server]\nthreads = 0\n", "threads must be positive"),
        ("[caller:x]\nmethods = a\n", "needs a name and a password_hash"),
        ("[caller:x]\npassword_hash = h\n", "methods lists nothing"),
        ("[server\n", "config file"),
        ("[rating]\nlookback = -1\n", "lookback must not be negative"),
        ("[outbox]\nkeep_delivered = -1\n", "keep_delivered must not be negative"),
        ("[billing]\nworkers = 0\n", "workers must be positive"),
        ("[billing]\nworkers = 33\n", r"workers must be 1\.\.32"),
    ])
    def test_bad_values(self, tmp_path, text, message):
        """A bad key is a ConfigError naming it."""
        ini = tmp_path / "b.ini"
        ini.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(ini)

    def test_missing_file(self, tmp_path):
        """A config path that does not exist is refused."""
        with pytest.raises(ConfigError, match="does not exist"):
            load_config(tmp_path / "nope.ini")


class TestCatalogue:
    def test_shipped_catalogue(self):
        """The shipped catalogue has the four example products."""
        codes = {p.code for p in load_catalogue(CONF / "catalogue.toml")}
        assert codes == {"PC2", "SMS-NOTIFY", "CRM-BASIC", "VOICE"}

    @pytest.mark.parametrize("text", [
        "[[product]]\nname = 'x'\n",
        "[[product]]\ncode = 'A'\nplans = 'P'\n",
        "[[product]]\ncode = 'A'\n[[product]]\ncode = 'A'\n",
        "not toml = = =",
    ])
    def test_bad_catalogue(self, tmp_path, text):
        """A malformed catalogue is a ConfigError."""
        path = tmp_path / "c.toml"
        path.write_text(text)
        with pytest.raises(ConfigError):
            load_catalogue(path)
