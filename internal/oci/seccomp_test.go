package oci

import (
	"regexp"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rulesFor returns the rules of p that name syscall.
func rulesFor(p *specs.LinuxSeccomp, syscall string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, r := range p.Syscalls {
		if slices.Contains(r.Names, syscall) {
			out = append(out, r)
		}
	}
	return out
}

// allowedAlways reports whether p allows syscall whatever its arguments.
func allowedAlways(p *specs.LinuxSeccomp, syscall string) bool {
	for _, r := range rulesFor(p, syscall) {
		if r.Action == specs.ActAllow && len(r.Args) == 0 {
			return true
		}
	}
	return false
}

// allowedSometimes reports whether p allows syscall for some arguments.
func allowedSometimes(p *specs.LinuxSeccomp, syscall string) bool {
	for _, r := range rulesFor(p, syscall) {
		if r.Action == specs.ActAllow {
			return true
		}
	}
	return false
}

func TestSeccompDefaultProfile(t *testing.T) {
	p := seccompProfile("amd64", defaultCaps)
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != uint(unix.EPERM) {
		t.Errorf("default action %s errno %v, want SCMP_ACT_ERRNO EPERM", p.DefaultAction, p.DefaultErrnoRet)
	}
	if diff := cmp.Diff([]specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, p.Architectures); diff != "" {
		t.Errorf("architectures (-want +got):\n%s", diff)
	}
	for _, s := range []string{
		"read", "write", "openat", "close", "execve", "exit_group", "futex", "mmap", "rt_sigaction",
		"epoll_pwait", "sched_getaffinity", "getrandom", "arch_prctl", "statx", "setuid", "chown32",
		"wait4", "pipe2", "connect", "accept4", "socketcall", "prctl", "capset", "rseq",
	} {
		if !allowedAlways(p, s) {
			t.Errorf("%s is not allowed", s)
		}
	}
	for _, s := range []string{
		"ptrace", "mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
		"perf_event_open", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"reboot", "swapon", "swapoff", "io_uring_setup", "io_uring_enter", "userfaultfd", "chroot",
		"clock_settime", "settimeofday", "open_by_handle_at", "pivot_root", "acct", "iopl", "ioperm",
		"process_vm_readv", "kcmp", "pidfd_getfd", "syslog", "mbind", "move_pages", "fsopen", "open_tree",
		"sethostname", "quotactl", "vhangup", "lookup_dcookie", "nfsservctl", "uselib",
	} {
		if allowedSometimes(p, s) {
			t.Errorf("%s is allowed without the capability that guards it", s)
		}
	}
	// clone: only without namespace flags.
	clone := rulesFor(p, "clone")
	want := []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7E020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}}}
	if diff := cmp.Diff(want, clone); diff != "" {
		t.Errorf("clone rules (-want +got):\n%s", diff)
	}
	// clone3: ENOSYS, so that libc falls back to clone.
	clone3 := rulesFor(p, "clone3")
	if len(clone3) != 1 || clone3[0].Action != specs.ActErrno || clone3[0].ErrnoRet == nil || *clone3[0].ErrnoRet != uint(unix.ENOSYS) {
		t.Errorf("clone3 rules %+v, want one ERRNO(ENOSYS)", clone3)
	}
	// personality: only the listed personas, each an equality.
	var personas []uint64
	for _, r := range rulesFor(p, "personality") {
		if len(r.Args) != 1 || r.Args[0].Op != specs.OpEqualTo || r.Args[0].Index != 0 {
			t.Errorf("personality rule %+v is not one equality on argument 0", r)
			continue
		}
		personas = append(personas, r.Args[0].Value)
	}
	if diff := cmp.Diff([]uint64{0, 8, 0x20000, 0x20008, 0xffffffff}, personas); diff != "" {
		t.Errorf("personality values (-want +got):\n%s", diff)
	}
	// socket: every family but AF_VSOCK.
	sock := rulesFor(p, "socket")
	if len(sock) != 1 || len(sock[0].Args) != 1 || sock[0].Args[0] != (specs.LinuxSeccompArg{Index: 0, Value: unix.AF_VSOCK, Op: specs.OpNotEqual}) {
		t.Errorf("socket rules %+v, want allow unless AF_VSOCK", sock)
	}
}

func TestSeccompCapabilityGates(t *testing.T) {
	for _, tc := range []struct {
		add     string
		allowed []string
		still   []string // still refused
	}{
		{"CAP_SYS_ADMIN", []string{"mount", "umount2", "unshare", "setns", "clone", "clone3", "sethostname", "fsopen", "move_mount", "bpf", "syslog"}, []string{"ptrace", "keyctl", "reboot", "kexec_load"}},
		{"CAP_SYS_PTRACE", []string{"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"}, []string{"mount", "keyctl"}},
		{"CAP_SYS_CHROOT", []string{"chroot"}, []string{"pivot_root"}},
		{"CAP_SYS_TIME", []string{"settimeofday", "clock_settime"}, nil},
		{"CAP_SYS_MODULE", []string{"init_module", "finit_module", "delete_module"}, []string{"kexec_load"}},
		{"CAP_SYS_BOOT", []string{"reboot"}, []string{"kexec_load"}},
		{"CAP_SYS_RAWIO", []string{"iopl", "ioperm"}, nil},
		{"CAP_BPF", []string{"bpf"}, []string{"perf_event_open"}},
		{"CAP_PERFMON", []string{"perf_event_open"}, []string{"bpf"}},
		{"CAP_SYSLOG", []string{"syslog"}, nil},
		{"CAP_SYS_NICE", []string{"mbind", "set_mempolicy"}, nil},
		{"CAP_DAC_READ_SEARCH", []string{"open_by_handle_at"}, nil},
	} {
		t.Run(tc.add, func(t *testing.T) {
			p := seccompProfile("amd64", append(slices.Clone(defaultCaps), tc.add))
			for _, s := range tc.allowed {
				if !allowedAlways(p, s) {
					t.Errorf("%s is not allowed with %s", s, tc.add)
				}
			}
			for _, s := range tc.still {
				if allowedSometimes(p, s) {
					t.Errorf("%s is allowed with only %s", s, tc.add)
				}
			}
		})
	}
	// With CAP_SYS_ADMIN, clone has no flag filter and clone3 no ENOSYS rule.
	p := seccompProfile("amd64", []string{"CAP_SYS_ADMIN"})
	for _, r := range append(rulesFor(p, "clone"), rulesFor(p, "clone3")...) {
		if r.Action != specs.ActAllow || len(r.Args) != 0 {
			t.Errorf("with CAP_SYS_ADMIN, rule %+v restricts clone", r)
		}
	}
}

func TestSeccompArchitectures(t *testing.T) {
	for _, tc := range []struct {
		arch      string
		arches    []specs.Arch
		cloneArg  uint
		archCalls []string
	}{
		{"amd64", []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, 0, []string{"arch_prctl", "modify_ldt"}},
		{"arm64", []specs.Arch{specs.ArchAARCH64, specs.ArchARM}, 0, []string{"set_tls", "cacheflush", "arm_fadvise64_64"}},
		{"s390x", []specs.Arch{specs.ArchS390X, specs.ArchS390}, 1, nil},
	} {
		p := seccompProfile(tc.arch, defaultCaps)
		if diff := cmp.Diff(tc.arches, p.Architectures); diff != "" {
			t.Errorf("%s architectures (-want +got):\n%s", tc.arch, diff)
		}
		if c := rulesFor(p, "clone"); len(c) != 1 || c[0].Args[0].Index != tc.cloneArg {
			t.Errorf("%s clone rule %+v, want flags in argument %d", tc.arch, c, tc.cloneArg)
		}
		for _, s := range tc.archCalls {
			if !allowedAlways(p, s) {
				t.Errorf("%s: %s is not allowed", tc.arch, s)
			}
		}
	}
	if allowedSometimes(seccompProfile("arm64", defaultCaps), "arch_prctl") {
		t.Error("arm64 allows the amd64-only arch_prctl")
	}
}

func TestSeccompNamesWellFormed(t *testing.T) {
	name := regexp.MustCompile(`^_?[a-z][a-z0-9_]*$`)
	all := append(slices.Clone(capNames), "CAP_SYS_RESOURCE")
	p := seccompProfile("amd64", all)
	seen := map[string]bool{}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			if !name.MatchString(n) {
				t.Errorf("malformed syscall name %q", n)
			}
			if len(r.Args) == 0 && r.Action == specs.ActAllow {
				if seen[n] {
					t.Errorf("%s allowed twice", n)
				}
				seen[n] = true
			}
		}
	}
}
