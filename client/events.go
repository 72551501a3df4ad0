package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Event is one event from the daemon. Payload is the event's typed message
// rendered as JSON (its type is Type, e.g. "berth.services.events.v1.ContentDelete").
type Event struct {
	Timestamp time.Time       `json:"timestamp"`
	Namespace string          `json:"namespace,omitempty"`
	Topic     string          `json:"topic"`
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
}

// Subscribe streams events matching any of filters (fields: topic,
// namespace, type; e.g. `topic~=^/content/`). Events of every namespace are
// delivered unless a namespace filter says otherwise. Every event published
// after Subscribe returns is delivered. The events channel closes when ctx
// ends or the stream fails; the error channel then holds the failure, if any.
func (c *Client) Subscribe(ctx context.Context, filters ...string) (<-chan Event, <-chan error) {
	evc, errc := make(chan Event), make(chan error, 1)
	stream, err := c.events.Subscribe(ctx, &eventsapi.SubscribeRequest{Filters: filters})
	if err == nil {
		// The daemon sends headers once the subscription is registered.
		_, err = stream.Header()
		err = c.fromGRPC(err)
	}
	if err != nil {
		errc <- err
		close(errc)
		close(evc)
		return evc, errc
	}
	go func() {
		defer close(errc)
		defer close(evc)
		for {
			env, err := stream.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					errc <- err
				}
				return
			}
			ev := Event{Timestamp: timeOf(env.GetTimestamp()), Namespace: env.GetNamespace(), Topic: env.GetTopic()}
			if payload, err := env.GetEvent().UnmarshalNew(); err == nil {
				ev.Type = string(payload.ProtoReflect().Descriptor().FullName())
				ev.Payload, _ = protojson.Marshal(payload)
			} else {
				ev.Type = env.GetEvent().GetTypeUrl()
				ev.Payload = json.RawMessage(fmt.Sprintf("%q", "undecodable payload: "+err.Error()))
			}
			select {
			case evc <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return evc, errc
}
