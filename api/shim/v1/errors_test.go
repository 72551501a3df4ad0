package shim

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorCodesRoundTrip(t *testing.T) {
	for _, ce := range codeErrors {
		wrapped := fmt.Errorf("kill: process already exited: %w", ce.err)
		we := ToError(wrapped)
		if we.Code != ce.code || we.Message != wrapped.Error() {
			t.Errorf("ToError(%v) = %+v, want code %s", wrapped, we, ce.code)
		}
		if !errors.Is(we, ce.err) {
			t.Errorf("%+v does not match %v", we, ce.err)
		}
		for _, other := range codeErrors {
			if other.code != ce.code && errors.Is(we, other.err) {
				t.Errorf("%+v matches %v too", we, other.err)
			}
		}
	}
	if we := ToError(errors.New("runc create: boom")); we.Code != CodeUnknown {
		t.Errorf("plain error got code %s, want %s", we.Code, CodeUnknown)
	}
	// An *Error passes through unchanged.
	orig := &Error{Code: CodeNotFound, Message: "x"}
	if got := ToError(fmt.Errorf("wrapped: %w", orig)); got != orig {
		t.Errorf("ToError of a wrapped *Error = %+v", got)
	}
}
