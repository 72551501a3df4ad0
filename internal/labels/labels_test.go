package labels

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	if err := ValidateAll(map[string]string{"a": "b", "berth.io/x": strings.Repeat("v", MaxSize-10)}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]string{{"": "v"}, {"k": strings.Repeat("v", MaxSize)}} {
		if err := ValidateAll(m); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidateAll(%d-byte label) = %v, want invalid argument", len(m), err)
		}
	}
}

func TestUpdate(t *testing.T) {
	cur := map[string]string{"a": "1", "b": "2"}
	tests := []struct {
		name   string
		update map[string]string
		fps    []string
		want   map[string]string
	}{
		{"no fieldpaths replaces all", map[string]string{"c": "3"}, nil, map[string]string{"c": "3"}},
		{"labels replaces all", map[string]string{"c": "3"}, []string{"labels"}, map[string]string{"c": "3"}},
		{"one key set", map[string]string{"b": "9", "c": "3"}, []string{"labels.b"}, map[string]string{"a": "1", "b": "9"}},
		{"one key removed", map[string]string{}, []string{"labels.a"}, map[string]string{"b": "2"}},
		{"dotted key", map[string]string{"berth.io/x.y": "v"}, []string{"labels.berth.io/x.y"}, map[string]string{"a": "1", "b": "2", "berth.io/x.y": "v"}},
	}
	for _, tt := range tests {
		got, err := Update(cur, tt.update, tt.fps)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !cmp.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := Update(cur, nil, []string{"size"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("updating size: %v", err)
	}
	if _, err := Update(cur, map[string]string{"k": strings.Repeat("x", MaxSize)}, []string{"labels.k"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("oversized label: %v", err)
	}
}
