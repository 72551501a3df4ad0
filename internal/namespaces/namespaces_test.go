package namespaces

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestValidate(t *testing.T) {
	good := []string{"default", "k8s.io", "a", "team-1_x"}
	bad := []string{"", "Upper", "-lead", "trail-", "has space", "sl/ash", strings.Repeat("a", 77)}
	for _, n := range good {
		if err := Validate(n); err != nil {
			t.Errorf("Validate(%q) = %v", n, err)
		}
	}
	for _, n := range bad {
		if err := Validate(n); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Validate(%q) = %v, want invalid argument", n, err)
		}
	}
}

func TestNamespaceRequired(t *testing.T) {
	if _, err := NamespaceRequired(context.Background()); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("no namespace: %v", err)
	}
	ns, err := NamespaceRequired(WithNamespace(context.Background(), "k8s.io"))
	if err != nil || ns != "k8s.io" {
		t.Fatalf("got %q, %v", ns, err)
	}
}
