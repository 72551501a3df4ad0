package oci

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseSecurityOpts(t *testing.T) {
	profile := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}`
	custom := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActErrno}}}
	file := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(file, []byte(profile), 0644); err != nil {
		t.Fatal(err)
	}
	docker := filepath.Join(t.TempDir(), "docker.json")
	if err := os.WriteFile(docker, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}`), 0644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []string
		want securityOpts
		err  error
	}{
		{name: "defaults", want: securityOpts{noNewPrivileges: true}},
		{name: "nnp false", opts: []string{"no-new-privileges=false"}, want: securityOpts{}},
		{name: "nnp bare", opts: []string{"no-new-privileges=false", "no-new-privileges"}, want: securityOpts{noNewPrivileges: true}},
		{name: "nnp true", opts: []string{"no-new-privileges=true"}, want: securityOpts{noNewPrivileges: true}},
		{name: "seccomp unconfined", opts: []string{"seccomp=unconfined"}, want: securityOpts{noNewPrivileges: true, seccompUnconfined: true}},
		{name: "seccomp file", opts: []string{"seccomp=" + file}, want: securityOpts{noNewPrivileges: true, seccomp: custom}},
		{name: "seccomp inline", opts: []string{"seccomp=" + profile}, want: securityOpts{noNewPrivileges: true, seccomp: custom}},
		{name: "last seccomp wins", opts: []string{"seccomp=" + file, "seccomp=unconfined"}, want: securityOpts{noNewPrivileges: true, seccompUnconfined: true}},
		{name: "systempaths", opts: []string{"systempaths=unconfined"}, want: securityOpts{noNewPrivileges: true, systemPathsUnconfined: true}},
		{name: "apparmor unconfined", opts: []string{"apparmor=unconfined", "label=disable"}, want: securityOpts{noNewPrivileges: true}},
		{name: "apparmor profile", opts: []string{"apparmor=docker-default"}, err: errdefs.ErrNotImplemented},
		{name: "selinux label", opts: []string{"label=type:svirt_lxc_net_t"}, err: errdefs.ErrNotImplemented},
		{name: "nnp bad", opts: []string{"no-new-privileges=yes"}, err: errdefs.ErrInvalidArgument},
		{name: "seccomp relative", opts: []string{"seccomp=profile.json"}, err: errdefs.ErrInvalidArgument},
		{name: "seccomp missing file", opts: []string{"seccomp=/nonexistent/profile.json"}, err: errdefs.ErrInvalidArgument},
		{name: "seccomp docker format", opts: []string{"seccomp=" + docker}, err: errdefs.ErrInvalidArgument},
		{name: "seccomp bad json", opts: []string{"seccomp={"}, err: errdefs.ErrInvalidArgument},
		{name: "seccomp no default action", opts: []string{"seccomp={}"}, err: errdefs.ErrInvalidArgument},
		{name: "systempaths bad", opts: []string{"systempaths=confined"}, err: errdefs.ErrInvalidArgument},
		{name: "legacy colon form", opts: []string{"seccomp:unconfined"}, err: errdefs.ErrInvalidArgument},
		{name: "unknown", opts: []string{"bogus=1"}, err: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSecurityOpts(tc.opts)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(securityOpts{})); diff != "" {
				t.Errorf("security options (-want +got):\n%s", diff)
			}
		})
	}
}
