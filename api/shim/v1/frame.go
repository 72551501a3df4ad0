package shim

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// FrameKind is the first byte of a frame on an attach connection.
type FrameKind byte

// Frame kinds. Stdout, Stderr and End flow from the shim to the client; Stdin,
// CloseStdin and Resize from the client to the shim.
const (
	FrameStdin      FrameKind = 0 // payload: bytes for the process's stdin
	FrameStdout     FrameKind = 1 // payload: bytes the process wrote to stdout (or its terminal)
	FrameStderr     FrameKind = 2 // payload: bytes the process wrote to stderr
	FrameEnd        FrameKind = 3 // no payload: the process's output has ended; the shim closes
	FrameCloseStdin FrameKind = 4 // no payload: close the process's stdin
	FrameResize     FrameKind = 5 // payload: width, height as two big-endian uint16
)

// MaxFramePayload bounds the payload of one frame.
const MaxFramePayload = 32 << 10

// frameHeaderSize is the kind byte and the big-endian uint32 payload length.
const frameHeaderSize = 5

// AppendFrame appends the encoding of one frame to b.
func AppendFrame(b []byte, kind FrameKind, payload []byte) []byte {
	b = append(b, byte(kind))
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// WriteFrame writes one frame to w in one write. Payloads longer than
// MaxFramePayload are split into several frames of the same kind.
func WriteFrame(w io.Writer, kind FrameKind, payload []byte) error {
	for {
		n := min(len(payload), MaxFramePayload)
		var hdr [frameHeaderSize]byte
		hdr[0] = byte(kind)
		binary.BigEndian.PutUint32(hdr[1:], uint32(n))
		bufs := net.Buffers{hdr[:]}
		if n > 0 {
			bufs = append(bufs, payload[:n])
		}
		if _, err := bufs.WriteTo(w); err != nil {
			return err
		}
		payload = payload[n:]
		if len(payload) == 0 {
			return nil
		}
	}
}

// ReadFrame reads one frame from r into buf, which must hold MaxFramePayload
// bytes, and returns its kind and payload (a slice of buf). It returns io.EOF
// only when r ends between frames.
func ReadFrame(r io.Reader, buf []byte) (FrameKind, []byte, error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFramePayload || int(n) > len(buf) {
		return 0, nil, fmt.Errorf("read frame: payload of %d bytes exceeds %d", n, MaxFramePayload)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return FrameKind(hdr[0]), buf[:n], nil
}

// ResizePayload encodes a terminal size for a FrameResize.
func ResizePayload(width, height uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, width), height)
}

// ParseResize decodes the payload of a FrameResize.
func ParseResize(p []byte) (width, height uint16, err error) {
	if len(p) != 4 {
		return 0, 0, fmt.Errorf("resize frame: payload of %d bytes, want 4: %w", len(p), ErrInvalidArgument)
	}
	return binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]), nil
}
