// Package shim is the contract between berthd and berth-shim, the process that
// runs one container: the wire types of its small line-oriented protocol, the
// frame format of its streams, the files it keeps in the task directory, and a
// Go client.
//
// A call is one Unix-socket connection: the client writes one JSON Request
// line, the shim answers with one JSON Response line and closes, except for
// attach, whose connection then carries frames (see WriteFrame). The full
// protocol, with every method, error code and file, is in
// docs/shim-protocol.md.
//
// The package is imported by the daemon (internal/runtime, the CRI server) and
// by the shim (internal/shim). It must stay small: the standard library and
// the OCI runtime-spec types only, no gRPC, no berth internal packages,
// because every byte of code it pulls in is paid once per running container.
package shim
