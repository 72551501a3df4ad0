// Package remote is berth's registry client for the OCI distribution
// protocol (and Docker Registry v2): it parses image references, resolves
// them to descriptors, streams blobs and manifests out of registries,
// pushes them in, lists tags and picks platforms from indexes. It owns the
// hosts configuration (mirrors, TLS, plain HTTP, per-mirror credentials),
// the choice of credentials, and the transfer policies (failover, retries,
// stall detection). The authentication protocol itself (challenge ping,
// basic, bearer token exchange and refresh) is go-containerregistry's
// transport package; Docker config files and credential helpers are read
// and written with the Docker CLI's config package, as
// go-containerregistry's authn does.
//
// It must not store anything: it never imports the content store or other
// daemon-side packages. The image pull pipeline (package images) streams
// what Fetch returns into the content store; the daemonless CLI verbs use
// it directly. It imports only errdefs, log, the OCI specs, go-digest,
// go-toml, go-containerregistry and github.com/docker/cli/cli/config.
//
// # Words
//
//   - reference: registry, repository, tag and/or digest ("docker.io/library/busybox:latest").
//   - host: one endpoint serving a registry's API: a mirror or the
//     registry's own server. A HostPlan says how it is reached.
//   - capability: what a host may be used for: pull (fetch by digest),
//     resolve (tag to digest, tag lists), push.
//   - descriptor: media type, digest and size of a blob or manifest.
//
// # Hosts configuration
//
// The hosts for registry R come from <HostsDir>/R/hosts.toml, else
// <HostsDir>/_default/hosts.toml, else built-in defaults (https://R, with
// docker.io served by registry-1.docker.io). The format is containerd's,
// plus credentials:
//
//	# /etc/berth/certs.d/docker.io/hosts.toml
//	server = "https://registry-1.docker.io"   # default https://<registry>
//
//	[host."https://mirror.internal:5000"]      # tried first, in file order
//	  capabilities = ["pull", "resolve"]       # default all three
//	  ca = "/etc/berth/certs.d/docker.io/mirror-ca.pem"  # or a list; relative to this directory
//	  client = [["client.cert", "client.key"]] # or "both.pem", or a list of either
//	  skip_verify = false
//	  override_path = false                    # true: the URL path is the API root, no /v2 added
//	  username = "robot"                       # credentials for this host only, or:
//	  password = "s3cret"                      # auth = "base64(user:password)"
//	  [host."https://mirror.internal:5000".header]
//	    x-team = "build"
//
//	[host."http://10.0.0.2:5000"]             # http:// means plain HTTP
//	  capabilities = ["pull"]
//
// Top-level keys other than server and host apply to the server. Files are
// read on each request, reparsed only when their modification time or size
// changes, so edits need no restart. A malformed file fails the request
// with ErrInvalidArgument naming the file and the key. Credentials in a
// hosts file are sent only to that host (and to the token service it
// names); a file holding them should be mode 0600 (a warning is logged
// otherwise), and they take precedence over Config.Credentials. Loopback
// registries (localhost, 127.0.0.0/8, ::1) without a hosts file are tried
// over https and fall back to plain http when the server answers TLS with
// HTTP. Explain shows the resulting plan.
//
// # Transfers
//
// Every request, and setting up authentication with a host, runs under a
// stall detector (StallPolicy): if fewer than MinRate bytes/s move over a
// Window of time spent waiting on the network, the request is aborted with
// ErrStalled. Requests are retried on the same host (RetryPolicy) on 429
// (honouring Retry-After), 500, 502, 503, 504 and reset connections, with
// exponential backoff; then the next host is tried (also on 404, refused
// connections, TLS errors and stalls). These retries cover the ping and
// token requests too, and are the only ones: go-containerregistry's
// retrying transport is not used. A token service (bearer challenge realm)
// named by a loopback, private or link-local IP address must be on the
// registry's own host and port, and an http realm needs a plain-HTTP
// registry (go-containerregistry's guard against request forgery). Errors
// name the operation and object, carry the last host's error (the
// upstream's, since the server is last) and list what earlier hosts said.
//
// # Concurrency
//
// A Client is safe for concurrent use and meant to be shared: it caches
// connections per host and, per host, credentials and set of repository
// scopes, go-containerregistry's authenticated transport, which pinged the
// host once and holds its bearer token (replaced when the registry refuses
// it). A 401 that stands drops that transport. Readers it returns belong to
// one goroutine.
package remote

import (
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest
)
