package filters

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

type object struct {
	name   string
	labels map[string]string
}

func (o object) Field(fp []string) (string, bool) {
	if len(fp) == 1 && fp[0] == "name" {
		return o.name, o.name != ""
	}
	return LabelsField(o.labels, fp)
}

func TestMatch(t *testing.T) {
	obj := object{name: "web", labels: map[string]string{"berth.io/gc.root": "x", "tier": "front end"}}
	tests := []struct {
		filters []string
		want    bool
	}{
		{nil, true},
		{[]string{"name==web"}, true},
		{[]string{"name==db"}, false},
		{[]string{"name!=db"}, true},
		{[]string{"name~=^w"}, true},
		{[]string{`labels."berth.io/gc.root"`}, true},
		{[]string{`labels.berth.io/gc.root==x`}, true},
		{[]string{`labels.missing`}, false},
		{[]string{`labels.missing!=1`}, true},
		{[]string{`name==web,labels.tier=="front end"`}, true},
		{[]string{`name==web,labels.tier==back`}, false},
		{[]string{`name==db`, `labels.tier~=front`}, true},
		{[]string{"  "}, true},
	}
	for _, tt := range tests {
		f, err := Parse(tt.filters...)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.filters, err)
		}
		if got := f.Match(obj); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.filters, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"==x", "name=x", `labels."open`, "name~=(", "a,,b", "name==x;y,"} {
		if _, err := Parse(s); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Parse(%q) = %v, want invalid argument", s, err)
		}
	}
}
