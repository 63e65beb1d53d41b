"""A write quota on the sandbox's workspace: an overlay whose upper layer is a size-limited tmpfs, synced back.

Why this design (bubblewrap 0.8.0, run as root): the candidates were
- RLIMIT_FSIZE plus a usage check after the run: the limit is per file, so many files still fill the
  disk during the run, and the check can only revert afterwards;
- a loop-mounted filesystem image holding the workspace: needs mkfs, a loop device, and a copy of the
  whole workspace in and out of the image on every run;
- an overlay (overlayfs(5), the layering container runtimes use) whose lower layer is the workspace and
  whose upper layer is a tmpfs(5) mounted with `size=` and `nr_inodes=`: every write lands in the
  tmpfs, so a write past the quota fails inside the sandbox with ENOSPC, at the moment it happens;
  nothing is copied in; afterwards only what changed (the upper layer) is copied back.
bubblewrap 0.8.0 has no --overlay (0.9.0 added it), so the overlay is mounted by `_quota_exec.py` in a
private mount namespace of its own just before bubblewrap starts; bubblewrap binds it as the workspace.
The tmpfs is mounted here, on the host, in a private folder out of the sandbox's view, and unmounted
after the sync; one left by a killed guard is swept at the next run (the folder name holds the pid).

What counts against the quota: the bytes of every file created or changed during the run (a changed
file is copied up whole, as overlayfs does), and folders and whiteouts as inodes. The tmpfs pages are
also charged to the sandbox's memory cgroup. Needs root (mounting); elsewhere `create` says why not.
"""

from __future__ import annotations

import ctypes
import os
import stat
import tempfile
from dataclasses import dataclass
from typing import Callable

from alignlab.controls import fstree

DEFAULT_INODES = 65536
PREFIX = "alignlab-quota-"
MNT_DETACH = 2
OPAQUE = "trusted.overlay.opaque"
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: str, fstype: str, data: str) -> None:
    if _libc.mount(source.encode(), os.fsencode(target), fstype.encode(), 0, data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _umount(target: str) -> None:
    _libc.umount2(os.fsencode(target), MNT_DETACH)


def unavailable() -> str | None:
    """None when this process can mount the overlay quota, else why not (one line)."""
    if os.geteuid() != 0:
        return "needs root to mount the overlay (no workspace quota)"
    try:
        with open("/proc/filesystems") as fh:
            kinds = fh.read().split()
    except OSError:
        kinds = []
    if "overlay" not in kinds or "tmpfs" not in kinds:
        return "the kernel offers no overlay or tmpfs filesystem (no workspace quota)"
    return None


def _base(workspace: str) -> str:
    for base in (tempfile.gettempdir(), "/run", "/dev/shm"):
        real = os.path.realpath(base)
        if os.path.isdir(real) and not (real + "/").startswith(workspace.rstrip("/") + "/") \
                and not (workspace + "/").startswith(real.rstrip("/") + "/" + PREFIX):
            return real
    raise OSError(f"no folder outside the workspace {workspace} for the quota tmpfs")


def sweep(base: str) -> None:
    """Unmount and remove quota folders left by guards that died (their pid is in the name)."""
    try:
        names = [n for n in os.listdir(base) if n.startswith(PREFIX)]
    except OSError:
        return
    for n in names:
        try:
            os.kill(int(n[len(PREFIX):].split("-")[0]), 0)
        except ProcessLookupError:
            path = os.path.join(base, n)
            _umount(path)
            try:
                os.rmdir(path)
            except OSError:
                pass
        except (ValueError, OSError):
            pass


@dataclass
class WorkspaceQuota:
    """One run's quota: a tmpfs of `limit_bytes` holding the overlay's upper and work folders."""

    workspace: str
    limit_bytes: int
    inodes: int
    folder: str = ""

    @classmethod
    def create(cls, workspace: str, limit_bytes: int, inodes: int = DEFAULT_INODES) -> "WorkspaceQuota":
        """Mount the tmpfs (raises OSError with the reason when it cannot)."""
        why = unavailable()
        if why:
            raise OSError(why)
        base = _base(workspace)
        sweep(base)
        q = cls(workspace, limit_bytes, inodes)
        q.folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base)
        try:
            _mount("alignlab-quota", q.folder, "tmpfs", f"size={limit_bytes},nr_inodes={inodes},mode=0700")
            for sub in ("upper", "work"):
                os.mkdir(os.path.join(q.folder, sub), 0o755)
        except BaseException:
            q.close()
            raise
        return q

    def shim_config(self) -> dict:
        """What `_quota_exec.py` needs to mount the overlay over the workspace."""
        return {"workspace": self.workspace, "upper": os.path.join(self.folder, "upper"),
                "work": os.path.join(self.folder, "work")}

    def usage(self) -> dict:
        st = os.statvfs(self.folder)
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        full = st.f_bavail * st.f_frsize < 64 << 10 or st.f_favail == 0
        return {"limit_bytes": self.limit_bytes, "used_bytes": used, "inodes_used": st.f_files - st.f_ffree,
                "full": bool(full)}

    def sync_back(self, skip: tuple[str, ...] = (), linked_inside: Callable[[str], bool] | None = None) -> dict:
        """Apply the upper layer to the workspace: new and changed entries copied, whiteouts removed.

        Both sides are walked through descriptors (fstree), nothing followed; `skip`: top-level names
        left alone (the guard's state folder when it sits in the workspace). A changed file that has other
        hard links is rewritten in place (so they all see the change, as without the overlay) when
        `linked_inside(rel)` confirms every link is in the workspace; otherwise it is replaced.
        """
        counts = {"written": 0, "removed": 0}
        upper = os.open(os.path.join(self.folder, "upper"), fstree.O_DIR)
        ws = os.open(self.workspace, fstree.O_DIR)
        try:
            with fstree.Cursor(ws) as cur:
                for rel, ufd, name, st in fstree.walk(upper, lambda rel, st: rel.split("/")[0] not in skip):
                    if rel.split("/")[0] in skip:
                        continue
                    wfd = cur.goto(rel.split("/")[:-1])
                    done = _apply(ufd, wfd, name, st, rel, linked_inside)
                    counts["removed" if done == "removed" else "written"] += 1
        finally:
            os.close(upper)
            os.close(ws)
        return counts

    def close(self) -> None:
        if self.folder:
            _umount(self.folder)
            try:
                os.rmdir(self.folder)
            except OSError:
                pass
            self.folder = ""


def _lstat(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None



def _copy_contents(src: int, dst: int, mode: int, st: os.stat_result) -> None:
    """Copy the bytes of descriptor `src` into `dst`, then its permission bits and times."""
    fstree.copy_fd(src, dst)
    os.fchmod(dst, stat.S_IMODE(mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))

def _apply(ufd: int, wfd: int, name: str, st: os.stat_result, rel: str,
           linked_inside: Callable[[str], bool] | None) -> str:
    m = st.st_mode
    have = _lstat(wfd, name)
    if stat.S_ISCHR(m) and st.st_rdev == 0:  # a whiteout: deleted during the run
        fstree.remove(wfd, name)
        return "removed"
    if stat.S_ISDIR(m):
        if have is None or not stat.S_ISDIR(have.st_mode):
            fstree.remove(wfd, name)
            os.mkdir(name, 0o700, dir_fd=wfd)
        else:
            try:
                opaque = os.getxattr(f"/proc/self/fd/{ufd}/{name}", OPAQUE, follow_symlinks=False) == b"y"
            except OSError:
                opaque = False
            if opaque:  # the folder was removed and made again: what was below it before is gone
                below = fstree.open_dir(ufd, name)
                try:
                    keep = set(os.listdir(below))
                finally:
                    os.close(below)
                child = fstree.open_dir(wfd, name)
                try:
                    for n in os.listdir(child):
                        if n not in keep:
                            fstree.remove(child, n)
                finally:
                    os.close(child)
        os.chmod(name, stat.S_IMODE(m), dir_fd=wfd)
        return "written"
    if have is not None and (stat.S_ISDIR(have.st_mode) or not stat.S_ISREG(m)):
        fstree.remove(wfd, name)
    if (stat.S_ISREG(m) and have is not None and stat.S_ISREG(have.st_mode) and have.st_nlink > 1
            and linked_inside is not None and linked_inside(rel)):
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=ufd)
        try:
            dst = os.open(name, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=wfd)
            try:
                _copy_contents(src, dst, m, st)
            finally:
                os.close(dst)
        finally:
            os.close(src)
    elif stat.S_ISREG(m):
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=ufd)
        tmp = f".alignlab-sync-{os.urandom(6).hex()}"
        try:
            dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=wfd)
            try:
                _copy_contents(src, dst, m, st)
            finally:
                os.close(dst)
            os.rename(tmp, name, src_dir_fd=wfd, dst_dir_fd=wfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=wfd)
            except OSError:
                pass
            raise
        finally:
            os.close(src)
    elif stat.S_ISLNK(m):
        os.symlink(os.readlink(name, dir_fd=ufd), name, dir_fd=wfd)
    elif stat.S_ISFIFO(m):
        os.mkfifo(name, 0o600, dir_fd=wfd)
        os.chmod(name, stat.S_IMODE(m), dir_fd=wfd)
    return "written"
