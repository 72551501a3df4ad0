package main

import (
	"strings"
	"testing"
)

func TestSaveAndLoadUsage(t *testing.T) {
	sock := noDaemon(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"save", "busybox"}, "requires -o FILE"},
		{[]string{"save", "-o", "x.tar"}, "requires at least 1 argument"},
		{[]string{"save", "-o", "x.tar", "--format", "zip", "busybox"}, `invalid argument "zip" for "--format" flag: want oci-archive or docker-archive`},
		{[]string{"load"}, "requires -i FILE"},
		{[]string{"load", "-i", "x.tar", "extra"}, "accepts no arguments"},
		{[]string{"image", "load"}, "requires -i FILE"},
	} {
		code, _, stderr := runBerth(t, append([]string{"--address", sock}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}
