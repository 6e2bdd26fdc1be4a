"""runs.atomic_write: whole files, readable like any file the user's umask allows."""

from __future__ import annotations

import os

from danlu.runs import atomic_write


def test_atomic_write_honours_the_umask_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        a = atomic_write(tmp_path / "a.json", "{}\n")
        os.umask(0o077)
        b = atomic_write(tmp_path / "b.json", b"{}\n")
    finally:
        os.umask(old)
    assert a.stat().st_mode & 0o777 == 0o644
    assert b.stat().st_mode & 0o777 == 0o600  # a private umask stays private
    assert a.read_text() == "{}\n" and b.read_bytes() == b"{}\n"


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path):
    atomic_write(tmp_path / "sub" / "x.txt", "one")
    atomic_write(tmp_path / "sub" / "x.txt", "two")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.txt"]
    assert (tmp_path / "sub" / "x.txt").read_text() == "two"
