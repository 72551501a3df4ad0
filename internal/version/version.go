// Package version holds the build's version, stamped by the Makefile with
// -ldflags -X.
package version

// Version and Revision are set at build time.
var (
	Version  = "dev"
	Revision = "unknown"
)
