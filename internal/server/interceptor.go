package server

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/leases"
	"github.com/berth-dev/berth/internal/log"
	"github.com/berth-dev/berth/internal/namespaces"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// CallObserver records each call's method, outcome and duration (metrics).
type CallObserver interface {
	ObserveCall(method string, code codes.Code, d time.Duration)
}

// requestContext puts the namespace ("default" when the client sent none)
// and lease of the call's headers into ctx.
func requestContext(ctx context.Context) context.Context {
	ns := namespaces.Default
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(namespaces.GRPCHeader); len(v) > 0 && v[0] != "" {
			ns = v[0]
		}
		if v := md.Get(leases.GRPCHeader); len(v) > 0 && v[0] != "" {
			ctx = leases.WithLease(ctx, v[0])
		}
	}
	return namespaces.WithNamespace(ctx, ns)
}

// finish maps err to a gRPC status once, logs the call at debug and records it.
func finish(ctx context.Context, obs CallObserver, method string, start time.Time, err error) error {
	err = errdefs.ToGRPC(err)
	d := time.Since(start)
	obs.ObserveCall(method, status.Code(err), d)
	log.G(ctx).Debug("grpc call", "method", method, "duration", d, "error", err)
	return err
}

// UnaryInterceptor is the single place unary calls get their request context
// and have errors translated to gRPC codes.
func UnaryInterceptor(obs CallObserver) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(requestContext(ctx), req)
		return resp, finish(ctx, obs, info.FullMethod, start, err)
	}
}

// StreamInterceptor does the same for streaming calls.
func StreamInterceptor(obs CallObserver) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, &contextStream{ServerStream: ss, ctx: requestContext(ss.Context())})
		return finish(ss.Context(), obs, info.FullMethod, start, err)
	}
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }
