"""Operating-system confinement of the reward sandbox process, below the restricted-Python layer.

The sandbox worker (:mod:`autogai.rewards.sandbox_worker`) calls these in order, so that it holds even if a
program escaped the restricted runtime:

1. :func:`enter_namespaces` (first, while the process has one thread): a fresh network namespace (no
   interface is up, nothing can be reached), inside a fresh user namespace when not root;
2. :func:`restrict_filesystem` (Landlock): the Python installation and the package may be read, nothing may be
   written, truncated, removed, created or executed anywhere; TCP bind/connect and signals to processes
   outside the sandbox are refused where the kernel's Landlock version covers them;
3. :func:`drop_privileges`: when started as root, switch to the unprivileged ``nobody`` user and group (no
   supplementary groups); then re-arm the parent-death signal, which a credential change clears;
4. :func:`limit_resources`: ``RLIMIT_AS``, ``RLIMIT_NOFILE``, ``RLIMIT_CPU``, ``RLIMIT_NPROC``;
5. :func:`install_seccomp` (last): a seccomp-bpf allow-list, through libseccomp's Python bindings (Debian's
   ``python3-seccomp`` or PyPI's ``pyseccomp``), on every thread. Every system call not on the list fails with
   ``EPERM``: opening any file, unlink/rename, socket/connect, fork/clone/exec, ptrace, and ``kill``/``tgkill``
   of any process but the sandbox itself. Foreign system-call ABIs (x32, i386) kill the process.

Every step is best effort: what a machine does not offer is reported (name -> reason) and the remaining
layers still hold. ``PR_SET_NO_NEW_PRIVS`` is set before Landlock and seccomp, which require it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

LAYERS = ("userns", "netns", "no_new_privs", "landlock", "uid", "seccomp")
"""The confinement layers beyond resource limits, in the order they are applied."""

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38

# Landlock (include/uapi/linux/landlock.h); the system call numbers are the same on every architecture.
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_EXECUTE = 1 << 0
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_ALL_ABI1 = (1 << 13) - 1  # execute, write, read, remove, make-*: the first ABI's rights
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_NET_ALL = (1 << 0) | (1 << 1)  # bind and connect TCP, ABI 4
_SCOPE_ALL = (1 << 0) | (1 << 1)  # abstract unix sockets and signals outside the domain, ABI 6
_O_PATH = getattr(os, "O_PATH", 0o10000000)

SECCOMP_ALLOWED = (
    # pipes to the parent, descriptors already open
    "read",
    "readv",
    "pread64",
    "write",
    "writev",
    "close",
    "fstat",
    "newfstatat",
    "statx",
    "lseek",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    # memory
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    # threads, clocks, signals of this process
    "futex",
    "set_robust_list",
    "rseq",
    "sched_yield",
    "sched_getaffinity",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "getrusage",
    "times",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "setitimer",  # the per-call CPU budget
    "getitimer",
    "restart_syscall",
    # identity and information
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "getcwd",
    "uname",
    "sysinfo",
    "getrandom",
    # the end
    "exit",
    "exit_group",
)
"""System calls the locked-down worker may make; everything else fails with EPERM."""


@dataclass
class Confinement:
    """What was applied (in order) and what a machine could not offer (layer -> reason)."""

    applied: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)

    def record(self, layer: str, outcome: str | None) -> None:
        """``outcome`` None: applied; otherwise the reason it is not."""
        if outcome is None:
            self.applied.append(layer)
        else:
            self.unavailable[layer] = outcome


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _errno_text() -> str:
    number = ctypes.get_errno()
    return f"{errno.errorcode.get(number, number)}: {os.strerror(number)}"


def enter_namespaces(confinement: Confinement, *, skip: Iterable[str] = ()) -> None:
    """A private network namespace (root), or a user plus network namespace (others); single-threaded only."""
    skipped = set(skip)
    if "netns" in skipped:
        confinement.record("netns", "turned off by the caller")
        return
    libc = _libc()
    if os.geteuid() == 0:
        confinement.record("netns", None if libc.unshare(_CLONE_NEWNET) == 0 else f"unshare: {_errno_text()}")
        return
    if "userns" not in skipped and libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        confinement.record("userns", None)
        confinement.record("netns", None)
        return
    reason = "turned off by the caller" if "userns" in skipped else f"unshare: {_errno_text()}"
    confinement.record("userns", reason)
    confinement.record("netns", f"needs root or a user namespace ({reason})")


def set_no_new_privs(confinement: Confinement) -> None:
    outcome = None if _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 else f"prctl: {_errno_text()}"
    confinement.record("no_new_privs", outcome)


def arm_parent_death_signal(parent_pid: int) -> bool:
    """SIGKILL this process when the thread that started it exits; exit now if the parent is already gone."""
    armed = _libc().prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    if os.getppid() != parent_pid:
        os._exit(3)
    return armed


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def readable_roots() -> list[str]:
    """Directories the sandbox may read: the Python installation and the directory autogai is imported from."""
    import autogai

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(autogai.__file__)))
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, package_root}
    return sorted(root for root in roots if os.path.isdir(root))


def restrict_filesystem(confinement: Confinement, roots: Iterable[str], *, skip: Iterable[str] = ()) -> None:
    """Landlock: read-only access beneath ``roots``, nothing else on the filesystem; TCP and signals scoped
    where the kernel supports it. Needs no_new_privs (or root)."""
    if "landlock" in set(skip):
        confinement.record("landlock", "turned off by the caller")
        return
    libc = _libc()
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        confinement.record("landlock", f"not offered by this kernel ({_errno_text()})")
        return
    handled = _FS_ALL_ABI1
    if abi >= 2:
        handled |= _FS_REFER
    if abi >= 3:
        handled |= _FS_TRUNCATE
    if abi >= 5:
        handled |= _FS_IOCTL_DEV
    attr = _RulesetAttr(handled, _NET_ALL if abi >= 4 else 0, _SCOPE_ALL if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        confinement.record("landlock", f"create_ruleset: {_errno_text()}")
        return
    try:
        for root in roots:
            try:
                fd = os.open(root, _O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = _PathBeneath(_FS_READ_FILE | _FS_READ_DIR, fd)
                if syscall(
                    _SYS_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0
                ):
                    confinement.record("landlock", f"add_rule {root}: {_errno_text()}")
                    return
            finally:
                os.close(fd)
        if syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            confinement.record("landlock", f"restrict_self: {_errno_text()}")
            return
    finally:
        os.close(ruleset)
    confinement.record("landlock", None)
    confinement.applied.append(f"landlock_abi{abi}")


def unprivileged_ids() -> tuple[int, int]:
    """``nobody``'s uid and gid (looked up before the filesystem is closed; 65534 where it is unknown)."""
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return 65534, 65534
    return entry.pw_uid, entry.pw_gid


def drop_privileges(confinement: Confinement, ids: tuple[int, int], *, skip: Iterable[str] = ()) -> None:
    """As root: become ``ids`` (user and group, no supplementary groups). Otherwise nothing to drop."""
    if os.geteuid() != 0:
        return
    if "uid" in set(skip):
        confinement.record("uid", "turned off by the caller")
        return
    uid, gid = ids
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        confinement.record("uid", f"setuid: {exc.strerror}")
        return
    confinement.record("uid", None)


def _limit(which: int, value: int) -> bool:
    import resource

    try:
        _, hard = resource.getrlimit(which)
        new_hard = value if hard == resource.RLIM_INFINITY or value < hard else hard
        resource.setrlimit(which, (min(value, new_hard), new_hard))
        return True
    except (ValueError, OSError):
        return False


def address_space_bytes() -> int | None:
    """The current address space (read before the filesystem is closed; None without /proc)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def limit_resources(
    confinement: Confinement, memory_limit_mb: int, cpu_limit_s: float | None, current_bytes: int | None
) -> None:
    """Address space (``current_bytes`` plus ``memory_limit_mb``), descriptors (those open), CPU seconds,
    processes."""
    import resource

    memory = int(memory_limit_mb) * 1024 * 1024
    if current_bytes is None:  # no /proc: cap the data segment instead of the address space
        if _limit(resource.RLIMIT_DATA, memory + 512 * 1024 * 1024):
            confinement.applied.append("data")
    elif _limit(resource.RLIMIT_AS, current_bytes + memory):
        confinement.applied.append("as")
    # Descriptors 0-4 are in use (stdin/stdout/stderr, the two pipe ends): nothing else can be opened.
    if _limit(resource.RLIMIT_NOFILE, 5):
        confinement.applied.append("nofile")
    if cpu_limit_s:
        seconds = max(1, int(cpu_limit_s + 0.999))
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
            confinement.applied.append("cpu")
        except (ValueError, OSError):
            pass
    if hasattr(resource, "RLIMIT_NPROC") and _limit(resource.RLIMIT_NPROC, 0):
        confinement.applied.append("nproc")


def load_seccomp_bindings() -> Any:
    """Debian's ``seccomp`` module or PyPI's API-compatible ``pyseccomp``, or the reason neither loads.

    Called before the filesystem is closed: loading finds and opens ``libseccomp.so``.
    """
    try:
        import seccomp  # type: ignore[import-not-found]
    except ImportError:
        try:
            import pyseccomp as seccomp  # type: ignore[import-untyped]
        except (ImportError, RuntimeError, OSError) as exc:
            return f"libseccomp Python bindings are not available ({exc or type(exc).__name__})"
    return seccomp


def install_seccomp(confinement: Confinement, seccomp: Any, *, skip: Iterable[str] = ()) -> None:
    """Load the allow-list on every thread of the process (see :data:`SECCOMP_ALLOWED`); ``seccomp`` is what
    :func:`load_seccomp_bindings` returned."""
    if "seccomp" in set(skip):
        confinement.record("seccomp", "turned off by the caller")
        return
    if isinstance(seccomp, str):
        confinement.record("seccomp", seccomp)
        return
    me = os.getpid()
    try:
        rules = seccomp.SyscallFilter(seccomp.ERRNO(errno.EPERM))
        rules.set_attr(seccomp.Attr.CTL_TSYNC, 1)
        for name in SECCOMP_ALLOWED:
            try:
                rules.add_rule(seccomp.ALLOW, name)
            except (OSError, ValueError, RuntimeError):  # not a system call on this architecture
                continue
        # Signals only to this process; resource limits may be read, never changed.
        for name in ("kill", "tkill"):
            rules.add_rule(seccomp.ALLOW, name, seccomp.Arg(0, seccomp.EQ, me))
        rules.add_rule(seccomp.ALLOW, "tgkill", seccomp.Arg(0, seccomp.EQ, me))
        rules.add_rule(
            seccomp.ALLOW, "prlimit64", seccomp.Arg(0, seccomp.EQ, 0), seccomp.Arg(2, seccomp.EQ, 0)
        )
        rules.load()
    except (OSError, ValueError, RuntimeError) as exc:
        confinement.record("seccomp", f"loading the filter failed ({exc})")
        return
    confinement.record("seccomp", None)
