// Package client is the Go client of berthd's API. It is the only way the
// berth CLI and other programs talk to the daemon, and it never exposes
// berth's internal types: every call takes and returns this package's types,
// and errors carry the daemon's message and match the kinds below with
// errors.Is.
//
//	c, err := client.New(ctx, "/run/berth/berth.sock", client.WithNamespace("default"))
//	...
//	defer c.Close()
//	info, err := c.Server(ctx)
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	contentapi "github.com/berth-dev/berth/api/content/v1"
	diskusageapi "github.com/berth-dev/berth/api/diskusage/v1"
	eventsapi "github.com/berth-dev/berth/api/events/v1"
	gcapi "github.com/berth-dev/berth/api/gc/v1"
	imagesapi "github.com/berth-dev/berth/api/images/v1"
	introspectionapi "github.com/berth-dev/berth/api/introspection/v1"
	leasesapi "github.com/berth-dev/berth/api/leases/v1"
	namespacesapi "github.com/berth-dev/berth/api/namespaces/v1"
	snapshotsapi "github.com/berth-dev/berth/api/snapshots/v1"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/namespaces"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultAddress is berthd's default socket.
const DefaultAddress = "/run/berth/berth.sock"

// DefaultNamespace is used when none is chosen.
const DefaultNamespace = namespaces.Default

// Error kinds returned by the client; test with errors.Is.
var (
	ErrNotFound           = errdefs.ErrNotFound
	ErrAlreadyExists      = errdefs.ErrAlreadyExists
	ErrInvalidArgument    = errdefs.ErrInvalidArgument
	ErrFailedPrecondition = errdefs.ErrFailedPrecondition
	ErrConflict           = errdefs.ErrConflict
	ErrUnavailable        = errdefs.ErrUnavailable
	ErrNotImplemented     = errdefs.ErrNotImplemented
)

// Client is a connection to berthd. It is safe for concurrent use.
type Client struct {
	conn      *grpc.ClientConn
	address   string
	namespace string

	namespaces    namespacesapi.NamespacesClient
	content       contentapi.ContentClient
	leases        leasesapi.LeasesClient
	events        eventsapi.EventsClient
	introspection introspectionapi.IntrospectionClient
	gc            gcapi.GCClient
	images        imagesapi.ImagesClient
	snapshots     snapshotsapi.SnapshotsClient
	diskUsage     diskusageapi.DiskUsageClient
}

// Opt sets an option of New.
type Opt func(*options)

type options struct {
	namespace   string
	dialTimeout time.Duration
}

// WithNamespace sets the namespace of every call (default "default"); a
// namespace put in a call's context with WithCallNamespace wins.
func WithNamespace(ns string) Opt { return func(o *options) { o.namespace = ns } }

// WithDialTimeout bounds how long New waits for the socket (default 2s).
func WithDialTimeout(d time.Duration) Opt { return func(o *options) { o.dialTimeout = d } }

// New connects to berthd at address (a Unix socket path). It checks the
// socket answers, so a daemon that is not running is reported here, by name.
func New(ctx context.Context, address string, opts ...Opt) (*Client, error) {
	o := options{namespace: DefaultNamespace, dialTimeout: 2 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if err := namespaces.Validate(o.namespace); err != nil {
		return nil, err
	}
	probe, err := (&net.Dialer{Timeout: o.dialTimeout}).DialContext(ctx, "unix", address)
	if err != nil {
		return nil, connectError(address, err)
	}
	probe.Close()
	c := &Client{address: address, namespace: o.namespace}
	c.conn, err = grpc.NewClient("passthrough:///"+address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", address)
		}),
		grpc.WithChainUnaryInterceptor(c.unaryInterceptor),
		grpc.WithChainStreamInterceptor(c.streamInterceptor),
	)
	if err != nil {
		return nil, connectError(address, err)
	}
	c.namespaces = namespacesapi.NewNamespacesClient(c.conn)
	c.content = contentapi.NewContentClient(c.conn)
	c.leases = leasesapi.NewLeasesClient(c.conn)
	c.events = eventsapi.NewEventsClient(c.conn)
	c.introspection = introspectionapi.NewIntrospectionClient(c.conn)
	c.gc = gcapi.NewGCClient(c.conn)
	c.images = imagesapi.NewImagesClient(c.conn)
	c.snapshots = snapshotsapi.NewSnapshotsClient(c.conn)
	c.diskUsage = diskusageapi.NewDiskUsageClient(c.conn)
	return c, nil
}

func connectError(address string, err error) error {
	switch {
	case errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot connect to berthd at %s: permission denied (the socket is for root and its group; run as root or join the group set by grpc.group)", address)
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to berthd at %s: is it running? (%v)", address, errors.Unwrap(err))
	default:
		return fmt.Errorf("cannot connect to berthd at %s: is it running? (%v)", address, err)
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Address is the socket the client is connected to.
func (c *Client) Address() string { return c.address }

// Namespace is the client's default namespace.
func (c *Client) Namespace() string { return c.namespace }

type callNamespaceKey struct{}

// WithCallNamespace returns a ctx whose calls use namespace ns.
func WithCallNamespace(ctx context.Context, ns string) context.Context {
	return context.WithValue(ctx, callNamespaceKey{}, ns)
}

// WithLease returns a ctx whose writes are attached to lease id.
func WithLease(ctx context.Context, id string) context.Context {
	return leases.WithLease(ctx, id)
}

// outgoing adds the namespace and lease headers to ctx.
func (c *Client) outgoing(ctx context.Context) context.Context {
	ns := c.namespace
	if v, ok := ctx.Value(callNamespaceKey{}).(string); ok && v != "" {
		ns = v
	}
	ctx = metadata.AppendToOutgoingContext(ctx, namespaces.GRPCHeader, ns)
	if id, ok := leases.FromContext(ctx); ok {
		ctx = metadata.AppendToOutgoingContext(ctx, leases.GRPCHeader, id)
	}
	return ctx
}

// unaryInterceptor sets headers and maps errors back to kinds, once for all calls.
func (c *Client) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return c.fromGRPC(invoker(c.outgoing(ctx), method, req, reply, cc, opts...))
}

func (c *Client) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(c.outgoing(ctx), desc, cc, method, opts...)
	if err != nil {
		return nil, c.fromGRPC(err)
	}
	return &errorStream{ClientStream: s, c: c}, nil
}

type errorStream struct {
	grpc.ClientStream
	c *Client
}

func (s *errorStream) SendMsg(m any) error { return s.c.fromGRPC(s.ClientStream.SendMsg(m)) }
func (s *errorStream) RecvMsg(m any) error { return s.c.fromGRPC(s.ClientStream.RecvMsg(m)) }

// fromGRPC maps a status error to its kind; a daemon that went away is named.
func (c *Client) fromGRPC(err error) error {
	err = errdefs.FromGRPC(err)
	if errors.Is(err, ErrUnavailable) && isConnectionLoss(err) {
		return fmt.Errorf("cannot connect to berthd at %s: is it running? (%w)", c.address, err)
	}
	return err
}

func isConnectionLoss(err error) bool {
	msg := err.Error()
	for _, s := range []string{"connection refused", "no such file", "connection reset", "error reading from server", "transport is closing"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// timeOf converts a protobuf timestamp, mapping an unset one to the zero time.
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
