// Package containers is berth's container service: it turns an image and
// run options (Config) into a container record with a generated OCI spec
// and a read-write snapshot, starts and stops its task through
// internal/runtime, applies restart policies and --rm when a task exits,
// and updates, commits and deletes containers. Each container's own files
// (hosts, hostname, resolv.conf, its log) live under ROOT/containers/<ns>/<id>.
package containers
