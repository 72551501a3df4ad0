package oci

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The default seccomp profile is an allowlist: a syscall it does not name
// fails with EPERM. It names what ordinary programs need, grouped below by
// area, and leaves out what reaches kernel state that is not namespaced or
// that has been a recurring source of exploits (keyrings, kernel modules,
// kexec, swap, io_uring, userfaultfd, bpf, perf events, raw port I/O, the
// clock, accounting, reboot). Syscalls whose only use is an operation a
// capability guards are allowed when the container has that capability
// (capGated): --cap-add SYS_ADMIN allows mount(2). Namespace creation is
// refused in clone(2) flags and unshare(2) without CAP_SYS_ADMIN; clone3(2)
// then fails with ENOSYS, because its flags are in memory that seccomp
// cannot read, and ENOSYS makes glibc and Go fall back to clone(2).
// docs/security.md has the rationale.

// allowedSyscalls are allowed to every container, whatever its
// capabilities. Names unknown to an architecture or to the runtime's
// libseccomp are ignored by the runtime.
var allowedSyscalls = [][]string{
	// Files and directories.
	{
		"access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd",
		"chmod", "fchmod", "fchmodat", "fchmodat2",
		"chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32",
		"creat", "open", "openat", "openat2", "close", "close_range",
		"dup", "dup2", "dup3", "fcntl", "fcntl64", "flock",
		"link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat",
		"rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "mknod", "mknodat",
		"readlink", "readlinkat", "getdents", "getdents64",
		"stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx",
		"statfs", "statfs64", "fstatfs", "fstatfs64",
		"truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate", "fadvise64", "fadvise64_64",
		"umask", "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
		"name_to_handle_at", "sync", "syncfs", "fsync", "fdatasync", "sync_file_range", "readahead",
		"getxattr", "lgetxattr", "fgetxattr", "getxattrat",
		"setxattr", "lsetxattr", "fsetxattr", "setxattrat",
		"listxattr", "llistxattr", "flistxattr", "listxattrat",
		"removexattr", "lremovexattr", "fremovexattr", "removexattrat",
	},
	// Reading and writing; asynchronous I/O (io_uring is left out).
	{
		"read", "readv", "pread64", "preadv", "preadv2",
		"write", "writev", "pwrite64", "pwritev", "pwritev2",
		"lseek", "_llseek", "sendfile", "sendfile64", "splice", "tee", "vmsplice", "copy_file_range", "ioctl",
		"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
	},
	// Waiting for events; pipes.
	{
		"select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
		"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old",
		"epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
		"timerfd_create", "timerfd_settime", "timerfd_settime64", "timerfd_gettime", "timerfd_gettime64",
		"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
		"pipe", "pipe2",
	},
	// Memory. Policy calls that move other processes' pages (mbind,
	// move_pages, migrate_pages) are not here.
	{
		"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
		"mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages",
		"membarrier", "memfd_create", "memfd_secret", "pkey_alloc", "pkey_free", "pkey_mprotect",
		"map_shadow_stack", "mseal", "cachestat",
	},
	// Processes and threads. clone, clone3, unshare and personality have
	// rules of their own.
	{
		"execve", "execveat", "fork", "vfork", "exit", "exit_group", "wait4", "waitid", "waitpid",
		"getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
		"getpriority", "setpriority", "prctl", "capget", "capset",
		"set_tid_address", "set_robust_list", "get_robust_list", "rseq", "restart_syscall",
		"futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
		"get_thread_area", "set_thread_area",
		"getrusage", "times", "getrlimit", "setrlimit", "ugetrlimit", "prlimit64", "getcpu",
		"sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
		"sched_getscheduler", "sched_setscheduler", "sched_getattr", "sched_setattr",
		"sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64",
		"ioprio_get", "ioprio_set", "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
		"pidfd_open", "pidfd_send_signal", "process_mrelease",
	},
	// Credentials.
	{
		"getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
		"getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
		"setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32",
		"setresuid", "setresuid32", "setresgid", "setresgid32",
		"setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "setgroups", "setgroups32",
	},
	// Signals and timers.
	{
		"kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigsuspend",
		"rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
		"rt_sigreturn", "sigreturn", "sigaltstack", "sigprocmask", "pause", "alarm", "getitimer", "setitimer",
		"timer_create", "timer_delete", "timer_settime", "timer_settime64", "timer_gettime", "timer_gettime64", "timer_getoverrun",
	},
	// Reading the clocks and system information (setting the clock needs
	// CAP_SYS_TIME; adjtimex and clock_adjtime only read without it).
	{
		"clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
		"clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "gettimeofday", "time",
		"adjtimex", "clock_adjtime", "clock_adjtime64", "uname", "sysinfo", "getrandom",
	},
	// Networking. socket has a rule of its own.
	{
		"socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername",
		"getsockopt", "setsockopt", "send", "sendto", "sendmsg", "sendmmsg",
		"recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64", "shutdown", "socketcall",
	},
	// System V and POSIX IPC (namespaced by the ipc namespace).
	{
		"ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semtimedop_time64", "semctl",
		"shmget", "shmat", "shmdt", "shmctl",
		"mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
		"mq_notify", "mq_getsetattr",
	},
}

// archSyscalls are allowed on the named GOARCH only.
var archSyscalls = map[string][]string{
	"amd64": {"arch_prctl", "modify_ldt"},
	"386":   {"modify_ldt"},
	"arm64": {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"},
	"arm":   {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"},
}

// capGated are allowed when the container has the capability: the kernel
// would refuse them without it anyway, and with it they are what the
// capability is granted for.
var capGated = []struct {
	capability string
	names      []string
	arches     []string // GOARCH values; none: all
}{
	{"CAP_SYS_ADMIN", []string{
		"mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree",
		"fsopen", "fsconfig", "fsmount", "fspick", "unshare", "setns", "clone3",
		"sethostname", "setdomainname", "quotactl", "quotactl_fd", "fanotify_init",
		"lookup_dcookie", "bpf", "perf_event_open", "syslog",
	}, nil},
	{"CAP_SYS_PTRACE", []string{"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp", "pidfd_getfd"}, nil},
	{"CAP_SYS_CHROOT", []string{"chroot"}, nil},
	{"CAP_DAC_READ_SEARCH", []string{"open_by_handle_at"}, nil},
	{"CAP_SYS_MODULE", []string{"init_module", "finit_module", "delete_module"}, nil},
	{"CAP_SYS_BOOT", []string{"reboot"}, nil},
	{"CAP_SYS_PACCT", []string{"acct"}, nil},
	{"CAP_SYS_TIME", []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}, nil},
	{"CAP_SYS_TTY_CONFIG", []string{"vhangup"}, nil},
	{"CAP_SYS_NICE", []string{"get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind"}, nil},
	{"CAP_SYSLOG", []string{"syslog"}, nil},
	{"CAP_BPF", []string{"bpf"}, nil},
	{"CAP_PERFMON", []string{"perf_event_open"}, nil},
	{"CAP_SYS_RAWIO", []string{"iopl", "ioperm"}, []string{"amd64", "386"}},
}

// seccompArches are the architectures a filter covers on each GOARCH: the
// native one and those whose binaries the kernel also runs there.
var seccompArches = map[string][]specs.Arch{
	"amd64":   {specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
	"386":     {specs.ArchX86},
	"arm64":   {specs.ArchAARCH64, specs.ArchARM},
	"arm":     {specs.ArchARM},
	"ppc64le": {specs.ArchPPC64LE},
	"s390x":   {specs.ArchS390X, specs.ArchS390},
	"riscv64": {specs.ArchRISCV64},
}

// personalities are the personality(2) arguments allowed: PER_LINUX,
// UNAME26, PER_LINUX32, PER_LINUX32|UNAME26, and 0xffffffff, which only
// queries. Other personalities (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, ...)
// weaken protections or run foreign binaries.
var personalities = []uint64{0x0, 0x0008, 0x20000, 0x20008, 0xffffffff}

// namespaceFlags are the clone(2) flags that create a namespace
// (CLONE_NEWTIME exists only in clone3 and unshare: in clone, its bit is
// part of the exit signal).
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// afVsock is AF_VSOCK, the address family of host-guest sockets, which
// reach out of the container's network namespace.
const afVsock = 40

// seccompProfile returns the default profile for a container with the
// capabilities caps (its bounding set) on GOARCH arch.
func seccompProfile(arch string, caps []string) *specs.LinuxSeccomp {
	allow := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActAllow}
	}
	var names []string
	for _, group := range allowedSyscalls {
		names = append(names, group...)
	}
	names = append(names, archSyscalls[arch]...)
	for _, g := range capGated {
		if slices.Contains(caps, g.capability) && (g.arches == nil || slices.Contains(g.arches, arch)) {
			names = append(names, g.names...)
		}
	}
	slices.Sort(names)
	rules := []specs.LinuxSyscall{allow(slices.Compact(names)...)}

	for _, p := range personalities {
		r := allow("personality")
		r.Args = []specs.LinuxSeccompArg{{Index: 0, Value: p, Op: specs.OpEqualTo}}
		rules = append(rules, r)
	}
	sock := allow("socket")
	sock.Args = []specs.LinuxSeccompArg{{Index: 0, Value: afVsock, Op: specs.OpNotEqual}}
	rules = append(rules, sock)

	if slices.Contains(caps, "CAP_SYS_ADMIN") {
		rules = append(rules, allow("clone"))
	} else {
		// The flags are clone's first argument, except on s390, which swaps
		// the first two.
		flagsArg := uint(0)
		if arch == "s390x" {
			flagsArg = 1
		}
		clone := allow("clone")
		clone.Args = []specs.LinuxSeccompArg{{Index: flagsArg, Value: namespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}}
		rules = append(rules, clone, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(unix.ENOSYS))})
	}
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: ptr(uint(unix.EPERM)),
		Architectures:   seccompArches[arch],
		Syscalls:        rules,
	}
}
