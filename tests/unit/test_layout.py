"""minray.object_store.layout: where an object's pickle and buffers sit in a segment."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.object_store.layout import (
    ALIGN,
    MAGIC,
    Layout,
    LayoutError,
    pack_header,
    plan,
    read_header,
)

FIXED = struct.Struct("<4sIQQ")
BUF = struct.Struct("<QQ")

LENGTHS = st.integers(min_value=0, max_value=5000)


def segment_for(layout):
    mem = bytearray(layout.total_size)
    header = pack_header(layout)
    mem[: len(header)] = header
    return mem


def test_plan_without_buffers_puts_the_pickle_right_after_the_header():
    layout = plan(100, [])
    assert layout == Layout(FIXED.size + 100, FIXED.size, 100, ())


def test_plan_aligns_every_buffer_to_64_bytes():
    layout = plan(10, [1, 100, 0, 64])
    offsets = [offset for offset, _ in layout.buffers]
    assert all(offset % ALIGN == 0 for offset in offsets)
    assert [length for _, length in layout.buffers] == [1, 100, 0, 64]
    assert offsets[0] >= layout.pickle_offset + layout.pickle_length


def test_plan_leaves_no_more_padding_than_alignment_needs():
    layout = plan(0, [1, 1])
    header = FIXED.size + 2 * BUF.size
    assert layout.buffers == ((64, 1), (128, 1))
    assert layout.pickle_offset == header
    assert layout.total_size == 129


@given(pickle_length=LENGTHS, buffer_lengths=st.lists(LENGTHS, max_size=8))
def test_planned_regions_are_aligned_ordered_and_inside_the_segment(pickle_length, buffer_lengths):
    layout = plan(pickle_length, buffer_lengths)
    header_end = FIXED.size + BUF.size * len(buffer_lengths)
    assert layout.pickle_offset == header_end
    end = layout.pickle_offset + pickle_length
    for (offset, length), wanted in zip(layout.buffers, buffer_lengths):
        assert length == wanted
        assert offset % ALIGN == 0
        assert end <= offset < end + ALIGN  # no overlap, minimal padding
        end = offset + length
    assert layout.total_size == end


@given(pickle_length=LENGTHS, buffer_lengths=st.lists(LENGTHS, max_size=8))
def test_header_round_trips_through_a_segment(pickle_length, buffer_lengths):
    layout = plan(pickle_length, buffer_lengths)
    assert read_header(segment_for(layout)) == layout


@given(
    pickle_length=LENGTHS,
    buffer_lengths=st.lists(LENGTHS, max_size=8),
    slack=st.integers(min_value=1, max_value=4096),
)
def test_reading_a_larger_segment_reports_its_real_size(pickle_length, buffer_lengths, slack):
    layout = plan(pickle_length, buffer_lengths)
    mem = segment_for(layout) + bytes(slack)
    assert read_header(memoryview(mem)) == layout._replace(total_size=layout.total_size + slack)


def test_read_header_accepts_bytes_and_memoryviews():
    layout = plan(5, [3])
    mem = segment_for(layout)
    assert read_header(bytes(mem)) == read_header(memoryview(mem)) == layout


@pytest.mark.parametrize("size", [0, 1, FIXED.size - 1])
def test_read_header_rejects_a_segment_too_small_for_a_header(size):
    with pytest.raises(LayoutError, match="too small"):
        read_header(bytes(size))


def test_read_header_rejects_bad_magic():
    mem = segment_for(plan(10, [10]))
    mem[:4] = b"NOPE"
    with pytest.raises(LayoutError, match="magic"):
        read_header(mem)


def test_read_header_rejects_an_all_zero_segment():
    with pytest.raises(LayoutError):
        read_header(bytes(4096))


def test_read_header_rejects_a_pickle_outside_the_segment():
    mem = bytearray(FIXED.pack(MAGIC, 0, FIXED.size, 1000)) + bytes(100)
    with pytest.raises(LayoutError, match="outside"):
        read_header(mem)


def test_read_header_rejects_a_buffer_count_beyond_the_segment():
    mem = bytearray(FIXED.pack(MAGIC, 1000, FIXED.size, 0)) + bytes(100)
    with pytest.raises(LayoutError, match="outside"):
        read_header(mem)


@pytest.mark.parametrize("offset, length", [(200, 1), (64, 200), (2**64 - 1, 1), (0, 2**64 - 1)])
def test_read_header_rejects_a_buffer_outside_the_segment(offset, length):
    mem = bytearray(FIXED.pack(MAGIC, 1, FIXED.size + BUF.size, 0) + BUF.pack(offset, length))
    mem += bytes(200 - len(mem))
    with pytest.raises(LayoutError, match="outside"):
        read_header(mem)


def test_layout_error_is_a_value_error():
    assert issubclass(LayoutError, ValueError)


@given(data=st.binary(max_size=300))
def test_read_header_of_arbitrary_bytes_returns_an_in_bounds_layout_or_raises_layout_error(
    data,
):
    try:
        layout = read_header(data)
    except LayoutError:
        return
    assert layout.pickle_offset + layout.pickle_length <= len(data)
    assert all(offset + length <= len(data) for offset, length in layout.buffers)
