"""The suite's guard (conftest.py) fails a test session that writes where a
test must never write, and keeps a test's relative paths and caches in
temporary directories."""
import os
from pathlib import Path

import conftest
import pytest

WRITES_INTO_THE_CACHE = """
import conftest

def test_prepares_a_data_set_in_the_real_cache():
    cache = conftest.PROTECTED[0] / "mnist" / "3.0.1"
    cache.mkdir(parents=True)
    (cache / "dataset_info.json").write_text("{}")
"""

WRITES_ONLY_ITS_OWN = """
from pathlib import Path

def test_writes_relative_paths(tmp_path):
    Path("outputs/dcgan").mkdir(parents=True)
    assert Path.cwd() == tmp_path
"""


TAKES_MORE_THAN_ITS_LIMIT = """
import conftest

def test_stands_for_one_that_takes_too_much_memory():
    conftest.MEMORY_LIMIT_GIB = 0.001  # any process is over that
"""


def run_session(pytester, test):
    """A pytest session in a fresh process with the project's conftest.py
    and one test file. Its "real" home is a temporary directory (pytester
    sets HOME to one), so what it protects is disposable."""
    pytester.makeconftest(Path(conftest.__file__).read_text())
    pytester.makepyfile(test_inner=test)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


@pytest.mark.slow
def test_a_session_that_writes_into_the_tensorflow_datasets_cache_fails(pytester):
    result = run_session(pytester, WRITES_INTO_THE_CACHE)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*The tests changed what they must never touch*",
                                 "*/tensorflow_datasets was created",
                                 "*1 passed*"])


@pytest.mark.slow
def test_a_session_that_writes_only_under_its_temporary_directories_passes(pytester):
    result = run_session(pytester, WRITES_ONLY_ITS_OWN)
    assert result.ret == 0
    assert "must never touch" not in result.stdout.str()


def test_this_session_runs_in_a_sandbox(tmp_path):
    assert Path.cwd() == tmp_path
    sandbox = str(conftest.SANDBOX)
    for name in ("HOME", "KERAS_HOME", "TFDS_DATA_DIR"):
        assert os.environ[name].startswith(sandbox), name
    for protected in conftest.PROTECTED:
        assert not str(protected).startswith(sandbox)


@pytest.mark.slow
def test_a_session_over_its_memory_limit_fails(pytester):
    result = run_session(pytester, TAKES_MORE_THAN_ITS_LIMIT)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*memory reached * GiB, over its limit of 0.001*", "*1 passed*"])


def test_a_missing_browser_or_tmpfs_fails_on_ci_unless_ci_said_so(monkeypatch):
    """Locally a test that cannot have Chromium or a tmpfs is skipped,
    saying why; under CI=true it fails, unless .ci/run put the name in
    CI_CANNOT_PROVIDE."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CI_CANNOT_PROVIDE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        conftest.unavailable("chromium", "no Chromium can be started")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no Chromium .*CI=true"):
        conftest.unavailable("chromium", "no Chromium can be started")
    monkeypatch.setenv("CI_CANNOT_PROVIDE", "tmpfs,chromium")
    with pytest.raises(pytest.skip.Exception):
        conftest.unavailable("chromium", "no Chromium can be started")
    monkeypatch.setenv("CI_CANNOT_PROVIDE", "chromium")
    with pytest.raises(pytest.fail.Exception):
        conftest.unavailable("tmpfs", "cannot mount a tmpfs here")
