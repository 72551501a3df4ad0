package images

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/remote"
)

func TestDistributionSourceLabels(t *testing.T) {
	ref := func(s string) remote.Reference {
		r, err := remote.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	key := LabelDistributionSourcePrefix + "reg.example:5000"
	for _, tc := range []struct {
		name    string
		current string
		ref     string
		want    string
		changed bool
		from    string // mountSource before the label is updated
	}{
		{"first source", "", "reg.example:5000/team/base:1", "team/base", true, ""},
		{"new repository appended", "team/base", "reg.example:5000/team/app:1", "team/base,team/app", true, "team/base"},
		{"known repository", "team/base,team/app", "reg.example:5000/team/base:2", "team/base,team/app", false, ""},
		{"latest source mounted from", "a,b,c", "reg.example:5000/d:1", "a,b,c,d", true, "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ref(tc.ref)
			labels := map[string]string{}
			if tc.current != "" {
				labels[key] = tc.current
			}
			if got := mountSource(labels, r); got != tc.from {
				t.Errorf("mountSource = %q, want %q", got, tc.from)
			}
			got, changed := withSource(tc.current, r)
			if got != tc.want || changed != tc.changed {
				t.Errorf("withSource = %q, %t; want %q, %t", got, changed, tc.want, tc.changed)
			}
		})
	}
	// Another registry's label is no source for this one.
	if got := mountSource(map[string]string{LabelDistributionSourcePrefix + "docker.io": "library/busybox"}, ref("reg.example:5000/x:1")); got != "" {
		t.Errorf("mounted from another registry's repository %q", got)
	}
	// The label stays bounded: the oldest repositories go first.
	long := strings.Repeat("r", 600)
	v, _ := withSource(long+"1,"+long+"2", ref("reg.example:5000/new:1"))
	if len(v) > maxSourceLabel || !strings.HasSuffix(v, ",new") || strings.Contains(v, long+"1") {
		t.Errorf("bounded label = %d bytes: %.40q…", len(v), v)
	}
}
