"""minray.node.private_dirs: a session root or ~/.minray that is not safely the user's is
refused, with why and what to do."""

from __future__ import annotations

import os

import pytest

from minray.config import Config
from minray.node.private_dirs import UnsafeDirectory, check_private_dir, private_dir


def test_a_missing_directory_is_made_private(tmp_path):
    path = private_dir(str(tmp_path / "deep" / "root"), "the session root")
    assert os.stat(path).st_mode & 0o777 == 0o700


def test_a_symbolic_link_is_refused_and_the_error_says_where_it_points(tmp_path):
    target = tmp_path / "theirs"
    target.mkdir(mode=0o700)
    link = tmp_path / "root"
    link.symlink_to(target)
    with pytest.raises(
        UnsafeDirectory, match=r"symbolic link \(to .*theirs\).*MINRAY_SESSION_ROOT"
    ):
        private_dir(str(link), "the session root")


def test_a_directory_others_can_write_to_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeDirectory, match="other users can write to it.*chmod 700"):
        private_dir(str(shared), "the session root")
    shared.chmod(0o755)  # readable by others is allowed: what is inside is 0700/0600
    private_dir(str(shared), "the session root")


def test_a_file_in_its_place_is_refused(tmp_path):
    (tmp_path / "root").write_text("")
    with pytest.raises(UnsafeDirectory, match="not a directory"):
        private_dir(str(tmp_path / "root"), "the session root")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a directory to another user")
def test_a_directory_of_another_user_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)  # nobody
    with pytest.raises(UnsafeDirectory, match="belongs to .*65534.*not to\\s+you"):
        check_private_dir(str(theirs), "the directory")


def test_the_default_root_is_per_user_and_can_never_be_imported_as_a_package():
    # (the default, not this process's settings: MINRAY_SESSION_ROOT may name another root)
    name = os.path.basename(Config().session_root)
    assert name == f"minray-{os.getuid()}" and not name.isidentifier()
