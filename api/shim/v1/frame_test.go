package shim

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    FrameKind
		payload []byte
		frames  int // frames WriteFrame makes
	}{
		{"empty", FrameEnd, nil, 1},
		{"stdin", FrameStdin, []byte("hello\n"), 1},
		{"max", FrameStdout, bytes.Repeat([]byte{'x'}, MaxFramePayload), 1},
		{"split", FrameStderr, bytes.Repeat([]byte{'y'}, 2*MaxFramePayload+5), 3},
		{"resize", FrameResize, ResizePayload(80, 24), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wire bytes.Buffer
			if err := WriteFrame(&wire, tc.kind, tc.payload); err != nil {
				t.Fatal(err)
			}
			// AppendFrame encodes a frame that fits the same way.
			if len(tc.payload) <= MaxFramePayload {
				if got := AppendFrame(nil, tc.kind, tc.payload); !bytes.Equal(got, wire.Bytes()) {
					t.Errorf("AppendFrame = %x, WriteFrame wrote %x", got, wire.Bytes())
				}
			}
			buf := make([]byte, MaxFramePayload)
			var got []byte
			for i := 0; i < tc.frames; i++ {
				kind, p, err := ReadFrame(&wire, buf)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if kind != tc.kind {
					t.Errorf("frame %d kind %d, want %d", i, kind, tc.kind)
				}
				got = append(got, p...)
			}
			if !bytes.Equal(got, tc.payload) && len(got)+len(tc.payload) > 0 {
				t.Errorf("payload %d bytes, want %d", len(got), len(tc.payload))
			}
			if _, _, err := ReadFrame(&wire, buf); err != io.EOF {
				t.Errorf("after the frames: %v, want io.EOF", err)
			}
		})
	}
}

func TestReadFrameRejectsBadInput(t *testing.T) {
	buf := make([]byte, MaxFramePayload)
	for _, tc := range []struct {
		name, wire string
		want       string
	}{
		{"oversized", "\x01\x00\x01\x00\x01", "exceeds"},
		{"truncated header", "\x01\x00\x00", "unexpected EOF"},
		{"truncated payload", "\x01\x00\x00\x00\x05abc", "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadFrame(strings.NewReader(tc.wire), buf)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseResize(t *testing.T) {
	w, h, err := ParseResize(ResizePayload(132, 43))
	if err != nil || w != 132 || h != 43 {
		t.Errorf("ParseResize = %d, %d, %v", w, h, err)
	}
	if _, _, err := ParseResize([]byte{1, 2, 3}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("short payload: %v, want invalid argument", err)
	}
}
