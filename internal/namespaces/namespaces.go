// Package namespaces carries the namespace of a request in a context and
// validates namespace names. Every object berth stores lives in exactly one
// namespace; storage of namespaces themselves is in package metadata.
package namespaces

import (
	"context"
	"fmt"
	"regexp"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Default is the namespace used when a client names none.
const Default = "default"

// GRPCHeader is the gRPC metadata key that carries the namespace.
const GRPCHeader = "berth-namespace"

type namespaceKey struct{}

// WithNamespace returns a copy of ctx carrying namespace ns.
func WithNamespace(ctx context.Context, ns string) context.Context {
	return context.WithValue(ctx, namespaceKey{}, ns)
}

// FromContext returns the namespace carried by ctx and whether there is one.
func FromContext(ctx context.Context) (string, bool) {
	ns, ok := ctx.Value(namespaceKey{}).(string)
	return ns, ok && ns != ""
}

// NamespaceRequired returns the valid namespace carried by ctx, or an
// ErrFailedPrecondition error when there is none.
func NamespaceRequired(ctx context.Context) (string, error) {
	ns, ok := FromContext(ctx)
	if !ok {
		return "", fmt.Errorf("no namespace in request: %w", errdefs.ErrFailedPrecondition)
	}
	if err := Validate(ns); err != nil {
		return "", err
	}
	return ns, nil
}

// Names are DNS-label-like: lowercase letters, digits, '-', '_' and '.', starting and
// ending with a letter or digit, at most 76 bytes (the same rule containerd applies).
var nameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$`)

const maxNameLen = 76

// Validate reports whether name is a valid namespace name.
func Validate(name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("namespace %q: longer than %d bytes: %w", name, maxNameLen, errdefs.ErrInvalidArgument)
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("namespace %q: must be lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}
