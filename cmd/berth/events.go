package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newEventsCommand(a *app) *cobra.Command {
	var (
		out     output
		filters []string
		all     bool
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Stream events until interrupted",
		Long: `Stream events until interrupted, one per line:

  TIMESTAMP NAMESPACE TOPIC PAYLOAD

NAMESPACE is - for events outside any namespace and PAYLOAD is JSON; with
--format json each line is a JSON object. Only events of the selected
namespace are shown unless --all-namespaces is given.`,
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !all {
				filters = namespaceFilters(filters, a.namespace)
			}
			w := cmd.OutOrStdout()
			evc, errc := a.client.Subscribe(cmd.Context(), filters...)
			for ev := range evc {
				line, err := formatEvent(ev, out.json())
				if err != nil {
					return err
				}
				if _, err := w.Write(line); err != nil {
					return err
				}
				if f, ok := w.(interface{ Flush() error }); ok {
					if err := f.Flush(); err != nil {
						return err
					}
				}
			}
			if err := <-errc; err != nil {
				return err
			}
			if cmd.Context().Err() == nil {
				return errors.New("event stream closed by berthd")
			}
			return nil
		},
	}
	out.addFormatFlag(cmd.Flags())
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "show only events matching `FILTER` (fields topic, namespace, type; e.g. topic~=^/content/; repeatable, any may match)")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "show events of every namespace")
	return cmd
}

// namespaceFilters restricts filters to namespace ns: the condition is added
// to each alternative, or is the only filter when there are none.
func namespaceFilters(filters []string, ns string) []string {
	cond := "namespace==" + ns
	if len(filters) == 0 {
		return []string{cond}
	}
	out := make([]string, len(filters))
	for i, f := range filters {
		out[i] = f + "," + cond
	}
	return out
}

// formatEvent renders ev as one line: a JSON object with asJSON, otherwise
// "TIMESTAMP NAMESPACE TOPIC PAYLOAD".
func formatEvent(ev client.Event, asJSON bool) ([]byte, error) {
	if asJSON {
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	}
	ns := ev.Namespace
	if ns == "" {
		ns = "-"
	}
	var payload bytes.Buffer
	if err := json.Compact(&payload, ev.Payload); err != nil {
		payload.Reset()
		payload.Write(ev.Payload)
	}
	line := fmt.Sprintf("%s %s %s %s\n", ev.Timestamp.Format(time.RFC3339Nano), ns, ev.Topic, bytes.ReplaceAll(payload.Bytes(), []byte("\n"), nil))
	return []byte(line), nil
}
