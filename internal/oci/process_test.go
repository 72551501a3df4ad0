package oci

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestMergeEnv(t *testing.T) {
	for _, tc := range []struct {
		name       string
		base, over []string
		want       []string
		err        bool
	}{
		{name: "empty"},
		{name: "append", base: []string{"A=1"}, over: []string{"B=2"}, want: []string{"A=1", "B=2"}},
		{name: "override keeps position", base: []string{"A=1", "B=2", "C=3"}, over: []string{"B=x"}, want: []string{"A=1", "B=x", "C=3"}},
		{name: "prefix is not a match", base: []string{"AB=1"}, over: []string{"A=2"}, want: []string{"AB=1", "A=2"}},
		{name: "empty value", base: []string{"A=1"}, over: []string{"A="}, want: []string{"A="}},
		{name: "value with =", over: []string{"A=b=c"}, want: []string{"A=b=c"}},
		{name: "later wins", over: []string{"A=1", "A=2"}, want: []string{"A=2"}},
		{name: "no =", over: []string{"A"}, err: true},
		{name: "empty key", over: []string{"=1"}, err: true},
		{name: "NUL in value", over: []string{"A=1\x00B=2"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mergeEnv(tc.base, tc.over, "--env")
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not ErrInvalidArgument", err)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProcessArgs(t *testing.T) {
	ep, cmd := []string{"/entry", "-x"}, []string{"serve", "--port=80"}
	for _, tc := range []struct {
		name    string
		ep, cmd []string
		o       Options
		want    []string
	}{
		{name: "entrypoint and cmd", ep: ep, cmd: cmd, want: []string{"/entry", "-x", "serve", "--port=80"}},
		{name: "args replace cmd", ep: ep, cmd: cmd, o: Options{Args: []string{"sh"}}, want: []string{"/entry", "-x", "sh"}},
		{name: "cmd only", cmd: cmd, want: cmd},
		{name: "entrypoint override drops image cmd", ep: ep, cmd: cmd, o: Options{EntrypointSet: true, Entrypoint: []string{"/bin/sh"}}, want: []string{"/bin/sh"}},
		{name: "entrypoint override with args", ep: ep, cmd: cmd, o: Options{EntrypointSet: true, Entrypoint: []string{"/bin/sh"}, Args: []string{"-c", "true"}}, want: []string{"/bin/sh", "-c", "true"}},
		{name: "empty entrypoint clears", ep: ep, cmd: cmd, o: Options{EntrypointSet: true, Entrypoint: []string{""}, Args: []string{"ls"}}, want: []string{"ls"}},
		{name: "nil entrypoint clears", ep: ep, cmd: cmd, o: Options{EntrypointSet: true, Args: []string{"ls"}}, want: []string{"ls"}},
		{name: "entrypoint unset is ignored", ep: ep, o: Options{Entrypoint: []string{"/other"}}, want: ep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, processArgs(tc.ep, tc.cmd, tc.o)); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCleanWorkingDir(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "/", "/app/": "/app", "/a/../b": "/b", "/a//b/.": "/a/b", "/..": "/"} {
		got, err := cleanWorkingDir(in, "-w")
		if err != nil || got != want {
			t.Errorf("cleanWorkingDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"app", "./app", "../x", "/a\x00b"} {
		if _, err := cleanWorkingDir(in, "-w"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("cleanWorkingDir(%q): error %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestExecProcess(t *testing.T) {
	rootfs := testRootfs(t)
	spec, err := generate(imageConfig("/bin/sh"), Options{ID: "c1", Users: readUsers(t, rootfs), Env: []string{"A=1"}, User: "bob", WorkingDir: "/srv"}, testHost())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ExecProcess(spec, rootfs, ExecOptions{Args: []string{"ls", "-l"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(spec.Process.Env, p.Env); diff != "" {
		t.Errorf("inherited env (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(spec.Process.User, p.User); diff != "" {
		t.Errorf("inherited user (-want +got):\n%s", diff)
	}
	if p.Cwd != "/srv" || !p.NoNewPrivileges || p.Terminal || !cmp.Equal(p.Capabilities, spec.Process.Capabilities) || !cmp.Equal(p.Rlimits, spec.Process.Rlimits) {
		t.Errorf("exec process %+v does not inherit the container's", p)
	}
	// The result shares nothing with the spec.
	p.Env[0], p.Capabilities.Bounding[0], p.Rlimits[0].Soft = "X=1", "CAP_X", 1
	if spec.Process.Env[0] == "X=1" || spec.Process.Capabilities.Bounding[0] == "CAP_X" || spec.Process.Rlimits[0].Soft == 1 {
		t.Error("changing the exec process changed the container spec")
	}

	p, err = ExecProcess(spec, rootfs, ExecOptions{Args: []string{"id"}, User: "alice", Env: []string{"A=2", "B=3"}, WorkingDir: "/tmp/", TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	want := specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000, 2001}}
	if diff := cmp.Diff(want, p.User); diff != "" {
		t.Errorf("exec user (-want +got):\n%s", diff)
	}
	if env := envMap(p.Env); env["A"] != "2" || env["B"] != "3" || env["HOME"] != "/home/alice" || p.Cwd != "/tmp" || !p.Terminal {
		t.Errorf("exec env %q cwd %q terminal %v", p.Env, p.Cwd, p.Terminal)
	}
	p, err = ExecProcess(spec, rootfs, ExecOptions{Args: []string{"id"}, User: "alice", Env: []string{"HOME=/h"}})
	if err != nil {
		t.Fatal(err)
	}
	if envMap(p.Env)["HOME"] != "/h" {
		t.Errorf("exec HOME %q, want the one given", envMap(p.Env)["HOME"])
	}

	for _, e := range []ExecOptions{
		{},
		{Args: []string{""}},
		{Args: []string{"ls"}, Env: []string{"NOEQUALS"}},
		{Args: []string{"ls"}, User: "nosuch"},
		{Args: []string{"ls"}, User: "1:2:3"},
		{Args: []string{"ls"}, WorkingDir: "relative"},
	} {
		if _, err := ExecProcess(spec, rootfs, e); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ExecProcess(%+v): error %v, want ErrInvalidArgument", e, err)
		}
	}
}
