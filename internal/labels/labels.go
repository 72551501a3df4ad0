// Package labels validates the key/value labels every berth object carries.
package labels

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// MaxSize is the largest key plus value, in bytes, a label may have.
const MaxSize = 4096

// Validate checks one label.
func Validate(k, v string) error {
	if k == "" {
		return fmt.Errorf("label key must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(k)+len(v) > MaxSize {
		short := k
		if len(short) > 64 {
			short = short[:64] + "…"
		}
		return fmt.Errorf("label %q: key and value are %d bytes, more than the limit of %d: %w", short, len(k)+len(v), MaxSize, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ValidateAll checks every label in m.
func ValidateAll(m map[string]string) error {
	for k, v := range m {
		if err := Validate(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Update returns current with the labels named by fieldpaths taken from
// update: "labels" (or no fieldpaths at all) replaces every label, and
// "labels.KEY" sets KEY, or removes it when update lacks it. Any other
// fieldpath is ErrInvalidArgument. The result is validated.
func Update(current, update map[string]string, fieldpaths []string) (map[string]string, error) {
	out := map[string]string{}
	replaceAll := len(fieldpaths) == 0
	for _, fp := range fieldpaths {
		if fp == "labels" {
			replaceAll = true
		}
	}
	if replaceAll {
		for k, v := range update {
			out[k] = v
		}
	} else {
		for k, v := range current {
			out[k] = v
		}
		for _, fp := range fieldpaths {
			key, ok := strings.CutPrefix(fp, "labels.")
			if !ok || key == "" {
				return nil, fmt.Errorf("field %q cannot be updated (only \"labels\" and \"labels.KEY\"): %w", fp, errdefs.ErrInvalidArgument)
			}
			if v, ok := update[key]; ok {
				out[key] = v
			} else {
				delete(out, key)
			}
		}
	}
	if err := ValidateAll(out); err != nil {
		return nil, err
	}
	return out, nil
}
