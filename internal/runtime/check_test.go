package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeRuntime(t *testing.T, out string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rt")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho '"+out+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckRuntimeVersions(t *testing.T) {
	for _, tc := range []struct {
		name, out, wantErr string
	}{
		{"runc", "runc version 1.1.5\ncommit: v1.1.5", ""},
		{"runc", "runc version 1.0.3", "needs 1.1 or later"},
		{"crun", "crun version 1.8.1\ncommit: abc", ""},
		{"crun", "crun version 0.21", "needs 1.4 or later"},
		{"runc", "something else", "no version line"},
	} {
		_, err := CheckRuntime(context.Background(), tc.name, fakeRuntime(t, tc.out))
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s %q: err %v, want %q", tc.name, tc.out, err, tc.wantErr)
		}
	}
	if _, err := CheckRuntime(context.Background(), "runc", "/nonexistent/runc"); err == nil || !strings.Contains(err.Error(), "apt-get install runc") {
		t.Errorf("missing binary: %v", err)
	}
}
