package server

import (
	"fmt"

	eventsapi "github.com/berth-dev/berth/api/events/v1"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type eventsService struct {
	eventsapi.UnimplementedEventsServer
	s *Server
}

func (e *eventsService) Subscribe(req *eventsapi.SubscribeRequest, stream eventsapi.Events_SubscribeServer) error {
	envs, errc, err := e.s.events.Subscribe(stream.Context(), req.GetFilters()...)
	if err != nil {
		return err
	}
	// Headers tell the client the subscription is registered: events
	// published from now on reach it.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	for env := range envs {
		payload, err := anypb.New(env.Event)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", env.Topic, err)
		}
		if err := stream.Send(&eventsapi.Envelope{Timestamp: timestamppb.New(env.Timestamp), Namespace: env.Namespace, Topic: env.Topic, Event: payload}); err != nil {
			return err
		}
	}
	return <-errc
}
