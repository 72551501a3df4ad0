package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/namespaces"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func receive(t *testing.T, ch <-chan *Envelope) *Envelope {
	t.Helper()
	select {
	case env := <-ch:
		return env
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return nil
	}
}

func TestSubscribeFiltersByTopicAndNamespace(t *testing.T) {
	x := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, _, err := x.Subscribe(ctx, `topic~=^/content/,namespace==a`)
	if err != nil {
		t.Fatal(err)
	}
	nsA := namespaces.WithNamespace(ctx, "a")
	nsB := namespaces.WithNamespace(ctx, "b")
	x.Publish(nsB, "/content/delete", wrapperspb.String("in b"))
	x.Publish(nsA, "/leases/create", wrapperspb.String("other topic"))
	x.Publish(nsA, "/content/delete", wrapperspb.String("wanted"))
	env := receive(t, ch)
	if env.Topic != "/content/delete" || env.Namespace != "a" || env.Event.(*wrapperspb.StringValue).Value != "wanted" {
		t.Fatalf("got %+v", env)
	}
	if v, _ := env.Field([]string{"type"}); v != "google.protobuf.StringValue" {
		t.Errorf("type field = %q", v)
	}
	select {
	case extra := <-ch:
		t.Fatalf("unexpected event %+v", extra)
	default:
	}
}

func TestSubscriptionEndsWithContext(t *testing.T) {
	x := New()
	ctx, cancel := context.WithCancel(context.Background())
	ch, errc, err := x.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after cancel")
	}
	if err, ok := <-errc; ok {
		t.Fatalf("unexpected error %v", err)
	}
}

func TestSlowSubscriberIsDroppedNotBlocking(t *testing.T) {
	x := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, errc, err := x.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < subscriberBuffer+10; i++ {
		x.Publish(ctx, "/t", wrapperspb.Int64(int64(i)))
	}
	n := 0
	for range ch {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("received %d events before drop, want %d", n, subscriberBuffer)
	}
	if err := <-errc; !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("drop error = %v", err)
	}
}

func TestSubscribeRejectsBadFilter(t *testing.T) {
	if _, _, err := New().Subscribe(context.Background(), "topic~=("); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	x := New()
	ch, errc, err := x.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	if _, ok := <-ch; ok {
		t.Fatal("subscription open after Close")
	}
	if err, ok := <-errc; ok {
		t.Fatalf("unexpected error %v", err)
	}
	if _, _, err := x.Subscribe(context.Background()); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	x.Publish(context.Background(), "/t", wrapperspb.String("after close")) // must not panic
}
