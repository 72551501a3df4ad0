// Package events is the in-process publish/subscribe exchange behind the
// events stream. Publishers hand it typed protobuf messages; subscribers get
// envelopes filtered by topic, namespace and payload type. It never blocks a
// publisher: a subscriber that falls more than its buffer behind is cut off
// with an error instead.
package events

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filters"
	"github.com/berth-dev/berth/internal/namespaces"
	"google.golang.org/protobuf/proto"
)

// Envelope is one published event.
type Envelope struct {
	Timestamp time.Time
	Namespace string // "" for daemon-wide events
	Topic     string // "/content/delete", ...
	Event     proto.Message
}

// Field exposes topic, namespace and type (the payload's full protobuf name)
// to filters.
func (e *Envelope) Field(fp []string) (string, bool) {
	if len(fp) != 1 {
		return "", false
	}
	switch fp[0] {
	case "topic":
		return e.Topic, e.Topic != ""
	case "namespace":
		return e.Namespace, e.Namespace != ""
	case "type":
		return string(e.Event.ProtoReflect().Descriptor().FullName()), true
	}
	return "", false
}

// Publisher publishes events. The namespace comes from ctx.
type Publisher interface {
	Publish(ctx context.Context, topic string, event proto.Message)
}

// subscriberBuffer is how many envelopes a subscriber may lag behind.
const subscriberBuffer = 1024

// Exchange fans published envelopes out to subscribers.
type Exchange struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
	now    func() time.Time
}

type subscriber struct {
	filter filters.Filter
	ch     chan *Envelope
	errc   chan error
}

// New returns an empty Exchange.
func New() *Exchange {
	return &Exchange{subs: map[*subscriber]struct{}{}, now: time.Now}
}

// Publish delivers event to every matching subscriber.
func (x *Exchange) Publish(ctx context.Context, topic string, event proto.Message) {
	ns, _ := namespaces.FromContext(ctx)
	env := &Envelope{Timestamp: x.now().UTC(), Namespace: ns, Topic: topic, Event: event}
	x.mu.Lock()
	defer x.mu.Unlock()
	for s := range x.subs {
		if !s.filter.Match(env) {
			continue
		}
		select {
		case s.ch <- env:
		default:
			delete(x.subs, s)
			close(s.ch)
			s.errc <- fmt.Errorf("event subscriber fell %d events behind and was dropped: %w", subscriberBuffer, errdefs.ErrUnavailable)
		}
	}
}

// Subscribe returns a channel of envelopes matching any of filterStrs (fields:
// topic, namespace, type) and a channel that receives at most one error. Both
// close when ctx ends or the subscriber is dropped.
func (x *Exchange) Subscribe(ctx context.Context, filterStrs ...string) (<-chan *Envelope, <-chan error, error) {
	f, err := filters.Parse(filterStrs...)
	if err != nil {
		return nil, nil, err
	}
	s := &subscriber{filter: f, ch: make(chan *Envelope, subscriberBuffer), errc: make(chan error, 1)}
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return nil, nil, fmt.Errorf("events: daemon is shutting down: %w", errdefs.ErrUnavailable)
	}
	x.subs[s] = struct{}{}
	x.mu.Unlock()
	go func() {
		// Owned by the subscription: ends when ctx does.
		<-ctx.Done()
		x.mu.Lock()
		defer x.mu.Unlock()
		if _, ok := x.subs[s]; ok {
			delete(x.subs, s)
			close(s.ch)
			close(s.errc)
		}
	}()
	return s.ch, s.errc, nil
}

// Close ends every subscription (their channels close without error) and
// refuses new ones. The daemon calls it on shutdown so streams finish.
func (x *Exchange) Close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.closed = true
	for s := range x.subs {
		delete(x.subs, s)
		close(s.ch)
		close(s.errc)
	}
}
