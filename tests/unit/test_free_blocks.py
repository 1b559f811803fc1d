"""dumpe2fs's free-block lines, as the RBD backend's zero_free reads them (pure parsing)."""

from tasks.storage._attach import parse_free_blocks
from tasks.storage.rbd import _intersect

_DUMP = """Filesystem volume name:   <none>
Block size:               4096
Free blocks:              498123

Group 0: (Blocks 0-32767) csum 0x1234 [ITABLE_ZEROED]
  Free blocks: 9-10, 40
  Free inodes: 12-8192
Group 1: (Blocks 32768-65535)
  Free blocks:
"""


def test_group_lines_become_byte_ranges_and_the_header_count_is_ignored():
    assert parse_free_blocks(_DUMP) == [(9 * 4096, 2 * 4096), (40 * 4096, 4096)]


def test_only_allocated_parts_of_free_ranges_are_zeroed():
    free = [(0, 100), (200, 100)]
    allocated = [(50, 200), (290, 5)]
    assert list(_intersect(free, allocated)) == [(50, 50), (200, 50), (290, 5)]
