#!/usr/bin/env python3
"""A pass-through FUSE file system that can make every write fail with EIO, for scripts/faults.sh.

Usage: scripts/eio-fs.py BACKING_DIR MOUNTPOINT FLAG_FILE

Files under MOUNTPOINT are the files of BACKING_DIR. While FLAG_FILE exists (it lives outside the
mount; create and delete it to switch), every call that would change data on the device (write,
fsync, truncate, create, mkdir, unlink, rename) fails with EIO, as on a failing disk or a lost
network volume. When the flag file holds a number N, the first N such calls after it appeared still
succeed (a device that fails in the middle of an operation). Reads keep working. Runs in the foreground until unmounted (`fusermount -u`).
Needs /dev/fuse, libfuse2 and the Python package fusepy (`pip install fusepy`).
"""

import errno
import os
import sys
import threading

from fuse import FUSE, FuseOSError, Operations  # type: ignore[import-not-found]


class FailingPassthrough(Operations):
    def __init__(self, root, flag):
        self.root = os.path.realpath(root)
        self.flag = flag
        self.budget = None  # calls still allowed since the flag appeared; None: no flag seen
        self._mutex = threading.Lock()  # not "lock": fusepy dispatches FUSE ops by attribute name

    def _path(self, partial):
        return os.path.join(self.root, partial.lstrip("/"))

    def _check(self):
        with self._mutex:
            if not os.path.exists(self.flag):
                self.budget = None
                return
            if self.budget is None:
                try:
                    with open(self.flag) as f:
                        self.budget = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    self.budget = 0
            if self.budget > 0:
                self.budget -= 1
                return
        raise FuseOSError(errno.EIO)

    # Metadata.
    def access(self, path, mode):
        if not os.access(self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        keys = ("st_atime", "st_blocks", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")
        return {k: getattr(st, k) for k in keys}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._path(path))

    def readlink(self, path):
        return os.readlink(self._path(path))

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag",
                "f_frsize", "f_namemax")
        return {k: getattr(st, k) for k in keys}

    def chmod(self, path, mode):
        self._check()
        os.chmod(self._path(path), mode)

    def chown(self, path, uid, gid):
        self._check()
        os.chown(self._path(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._path(path), times)

    # Changes to the tree.
    def mkdir(self, path, mode):
        self._check()
        os.mkdir(self._path(path), mode)

    def rmdir(self, path):
        self._check()
        os.rmdir(self._path(path))

    def unlink(self, path):
        self._check()
        os.unlink(self._path(path))

    def rename(self, old, new):
        self._check()
        os.rename(self._path(old), self._path(new))

    def symlink(self, name, target):
        self._check()
        os.symlink(target, self._path(name))

    def link(self, target, name):
        self._check()
        os.link(self._path(name), self._path(target))

    # File contents.
    def open(self, path, flags):
        return os.open(self._path(path), flags)

    def create(self, path, mode, fi=None):
        self._check()
        # Read-write: the kernel reads through this handle too (a shared mmap of SQLite's -shm file).
        return os.open(self._path(path), os.O_RDWR | os.O_CREAT, mode)

    def read(self, path, length, offset, fh):
        return os.pread(fh, length, offset)

    def write(self, path, data, offset, fh):
        self._check()
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        self._check()
        if fh is None:
            os.truncate(self._path(path), length)
        else:
            os.ftruncate(fh, length)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)
        return 0

    def fsync(self, path, fdatasync, fh):
        self._check()
        if fdatasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)
        return 0


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    backing, mountpoint, flag = sys.argv[1:]
    FUSE(FailingPassthrough(backing, flag), mountpoint, foreground=True, nothreads=False)


if __name__ == "__main__":
    main()
