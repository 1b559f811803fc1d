"""The incremental breeder's files read ahead into the page cache while the apply runs.

The breeder is a fresh clone of the last golden: none of its pages is in memory, and the
apply's updates, deletes and key checks each read pages of their own all over the tables,
one small read at a time (the same 53 k changed rows took 5.8 s on a 100 MB copy whose
pages stay cached, 8.3 s at 1 GB, 17.9 s at 4 GB; with this, 6.2-6.7 s at 1 GB). The breeder runs with
buffered I/O (`innodb_flush_method=fsync`, tasks/runtime/mariadb.py), so once the kernel has
read a file ahead in large requests (posix_fadvise WILLNEED: no copy through this process),
InnoDB's reads of it come from memory; the gate's reads and the forensic scan that follow
find them there too.

A thread asks for the files largest first, a slice at a time, and stops at the next slice
when the apply ends: it holds no file open past the step (a breeder removed after a
failure must unmount). The redo log and the temporary tablespace are left out: the server
writes them and never reads them back after a clean shutdown (the golden's redo log alone
is 128 MB, ~9 % of the 1.45 GB of files at 1 GB).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from tasks.storage import Storage

SLICE = 128 << 10  # bytes per request: the kernel reads at most a readahead window (128 kB by default) per call
_WRITTEN_ONLY = ("ib_logfile", "ibtmp")  # file-name prefixes the server does not read back


@contextlib.contextmanager
def read_ahead(storage: Storage, image: str) -> Iterator[None]:
    root = storage.attached(image)
    stop = threading.Event()
    thread = threading.Thread(target=_ask, args=(root, stop), daemon=True, name="read-ahead")
    if root is not None:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()


def _ask(root: Path, stop: threading.Event) -> None:
    files = []
    for top, _dirs, names in os.walk(root):  # errors (a directory removed meanwhile) are passed over
        for name in names:
            if name.startswith(_WRITTEN_ONLY):
                continue
            path = Path(top, name)
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink():
                    files.append((path.stat().st_size, path))
    for size, path in sorted(files, reverse=True):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # removed meanwhile (a temporary table): nothing to read
        try:
            for offset in range(0, size, SLICE):
                if stop.is_set():
                    return
                os.posix_fadvise(fd, offset, SLICE, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass  # a hint only: the apply reads what it needs either way
        finally:
            os.close(fd)
