"""minray.node.log_monitor.LogMonitor: tails worker output files in tmp_path."""

import pytest

from minray.node.log_monitor import MARKER, LogMonitor

PID = 4242


@pytest.fixture
def out(tmp_path):
    path = tmp_path / "worker-4242.out"
    path.write_bytes(b"")
    return path


@pytest.fixture
def monitor(out):
    m = LogMonitor()
    m.add(str(out), PID, False)
    return m


def append(path, data: bytes):
    with open(path, "ab") as f:
        f.write(data)


def test_poll_of_an_empty_file_returns_nothing(monitor):
    assert monitor.poll() == []


def test_complete_lines_are_returned_with_pid_name_and_stream(out, monitor):
    append(out, b"hello\nworld\n")
    assert monitor.poll() == [[PID, "worker", False, "hello"], [PID, "worker", False, "world"]]
    assert monitor.poll() == []


def test_each_poll_returns_only_new_lines(out, monitor):
    append(out, b"one\n")
    assert [line[3] for line in monitor.poll()] == ["one"]
    append(out, b"two\nthree\n")
    assert [line[3] for line in monitor.poll()] == ["two", "three"]


def test_partial_line_is_completed_on_a_later_poll(out, monitor):
    append(out, b"first\nsec")
    assert [line[3] for line in monitor.poll()] == ["first"]
    append(out, b"ond half")
    assert monitor.poll() == []
    append(out, b"\nthird\n")
    assert [line[3] for line in monitor.poll()] == ["second half", "third"]


def test_multibyte_character_split_across_polls_is_decoded_whole(out, monitor):
    text = "naïve ☃\n".encode()
    append(out, text[:8])
    assert monitor.poll() == []
    append(out, text[8:])
    assert [line[3] for line in monitor.poll()] == ["naïve ☃"]


def test_invalid_utf8_is_replaced_not_fatal(out, monitor):
    append(out, b"bad \xff byte\n")
    assert monitor.poll()[0][3] == "bad \ufffd byte"


def test_blank_lines_are_kept(out, monitor):
    append(out, b"a\n\nb\n")
    assert [line[3] for line in monitor.poll()] == ["a", "", "b"]


def test_marker_line_names_the_task_for_later_lines(out, monitor):
    append(out, b"before\n" + f"{MARKER}my_task".encode() + b"\nduring\n")
    assert monitor.poll() == [[PID, "worker", False, "before"], [PID, "my_task", False, "during"]]


def test_task_name_persists_across_polls_until_the_next_marker(out, monitor):
    append(out, f"{MARKER}first\n".encode())
    assert monitor.poll() == []  # a marker alone prints nothing
    append(out, b"x\n")
    assert monitor.poll() == [[PID, "first", False, "x"]]
    append(out, f"{MARKER}second\ny\n".encode())
    assert monitor.poll() == [[PID, "second", False, "y"]]


def test_marker_split_across_polls_still_sets_the_name(out, monitor):
    append(out, f"{MARKER}split_".encode())
    assert monitor.poll() == []
    append(out, b"name\nline\n")
    assert monitor.poll() == [[PID, "split_name", False, "line"]]


def test_files_are_tracked_separately(tmp_path, out, monitor):
    err = tmp_path / "worker-4242.err"
    err.write_bytes(b"")
    other = tmp_path / "worker-7.out"
    other.write_bytes(b"")
    monitor.add(str(err), PID, True)
    monitor.add(str(other), 7, False)
    append(out, f"{MARKER}task\nout-line\n".encode())
    append(err, b"err-line\n")
    append(other, b"other-")
    lines = monitor.poll()
    assert sorted(lines) == sorted(
        [[PID, "task", False, "out-line"], [PID, "worker", True, "err-line"]]
    )
    append(other, b"line\n")
    assert monitor.poll() == [[7, "worker", False, "other-line"]]


def test_remove_returns_the_final_partial_line(out, monitor):
    append(out, b"done\nno newline at the end")
    assert [line[3] for line in monitor.poll()] == ["done"]
    assert monitor.remove(str(out)) == [[PID, "worker", False, "no newline at the end"]]
    append(out, b"more\n")
    assert monitor.poll() == []  # no longer followed


def test_remove_returns_unread_lines_and_the_partial_one(out, monitor):
    append(out, f"{MARKER}t\nlast line\npartial".encode())
    assert monitor.remove(str(out)) == [
        [PID, "t", False, "last line"],
        [PID, "t", False, "partial"],
    ]


def test_remove_after_everything_was_read_returns_nothing(out, monitor):
    append(out, b"line\n")
    monitor.poll()
    assert monitor.remove(str(out)) == []


def test_remove_of_an_unknown_path_returns_nothing(tmp_path):
    assert LogMonitor().remove(str(tmp_path / "never-added")) == []


def test_deleted_file_is_skipped_without_error(out, monitor):
    out.unlink()
    assert monitor.poll() == []
    assert monitor.remove(str(out)) == []


def test_file_created_after_add_is_picked_up(tmp_path):
    path = tmp_path / "late.err"
    m = LogMonitor()
    m.add(str(path), 1, True)
    assert m.poll() == []
    path.write_bytes(b"now\n")
    assert m.poll() == [[1, "worker", True, "now"]]


def test_remove_keeps_blank_lines_like_poll_does(out, monitor):
    append(out, b"a\n\nb\n")
    assert [line[3] for line in monitor.remove(str(out))] == ["a", "", "b"]


def test_a_line_without_end_is_passed_on_in_bounded_pieces(out, monitor, monkeypatch):
    monkeypatch.setattr("minray.node.log_monitor.READ_MAX_BYTES", 16)
    append(out, b"x" * 50)
    pieces = [monitor.poll() for _ in range(4)]
    assert [[line[3] for line in lines] for lines in pieces] == [["x" * 16]] * 3 + [[]]
    append(out, b"\n")
    assert [line[3] for line in monitor.poll()] == ["xx"]


def test_each_poll_reads_a_bounded_amount_of_a_file(out, monitor, monkeypatch):
    monkeypatch.setattr("minray.node.log_monitor.READ_MAX_BYTES", 16)
    append(out, b"abc\n" * 10)
    first = monitor.poll()
    assert [line[3] for line in first] == ["abc"] * 4
    rest = monitor.poll() + monitor.poll() + monitor.poll()
    assert len(rest) == 6
