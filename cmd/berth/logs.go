package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newLogsCommand(a *app) *cobra.Command {
	var (
		opts       client.LogsOptions
		tail       tailValue
		since      = timeValue{now: time.Now}
		until      = timeValue{now: time.Now}
		timestamps bool
	)
	cmd := &cobra.Command{
		Use:   "logs CONTAINER",
		Short: "Print a container's output",
		Long: `Print a container's output: what its init process wrote to stdout goes to
stdout, what it wrote to stderr to stderr. The log outlives tasks: it holds
the output of every run of the container.`,
		Args:        exactArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tail, opts.Since, opts.Until = tail.lines, since.t, until.t
			return a.client.ContainerLogs(cmd.Context(), args[0], opts, func(e client.LogEntry) error {
				return writeLogEntry(cmd.OutOrStdout(), a.stderr, e, timestamps)
			})
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new output until the container stops")
	fs.Var(&tail, "tail", "print only the last `N` lines (or all)")
	fs.Var(&since, "since", "print output since `TIME` (RFC 3339, Unix seconds, or a duration ago like 10m)")
	fs.Var(&until, "until", "print output until `TIME` (same forms as --since)")
	fs.BoolVarP(&timestamps, "timestamps", "t", false, "prefix each line with its time (RFC 3339, nanoseconds)")
	return cmd
}

// writeLogEntry writes an entry to stdout or stderr, as its stream says,
// with its time first when timestamps is set.
func writeLogEntry(stdout, stderr io.Writer, e client.LogEntry, timestamps bool) error {
	w := stdout
	if e.Stream == "stderr" {
		w = stderr
	}
	_, err := w.Write(formatLogLine(e, timestamps))
	return err
}

// formatLogLine renders an entry: its data, with "TIME " first when
// timestamps is set (docker's form: RFC 3339 in UTC with nanoseconds).
func formatLogLine(e client.LogEntry, timestamps bool) []byte {
	if !timestamps {
		return e.Data
	}
	ts := e.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
	return append([]byte(ts+" "), e.Data...)
}

// tailValue is --tail: a number of lines, or "all" (nil lines).
type tailValue struct{ lines *int64 }

func (t *tailValue) String() string {
	if t.lines == nil {
		return "all"
	}
	return strconv.FormatInt(*t.lines, 10)
}
func (t *tailValue) Type() string { return "N|all" }
func (t *tailValue) Set(s string) error {
	if s == "all" {
		t.lines = nil
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want a number of lines or all")
	}
	if n < 0 {
		t.lines = nil // docker's -1 means all
		return nil
	}
	t.lines = &n
	return nil
}

// timeValue is --since or --until.
type timeValue struct {
	t   time.Time
	now func() time.Time
}

func (v *timeValue) String() string {
	if v.t.IsZero() {
		return ""
	}
	return v.t.Format(time.RFC3339Nano)
}
func (v *timeValue) Type() string { return "TIME" }
func (v *timeValue) Set(s string) error {
	t, err := parseTimeArg(s, v.now())
	if err != nil {
		return err
	}
	v.t = t
	return nil
}

// parseTimeArg parses a point in time given as RFC 3339 (with or without
// fractional seconds or zone: a time without zone is local), a date, Unix
// seconds (fractions allowed), or a duration before now ("10m", "1h30m").
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("duration %q must not be negative", s)
		}
		return now.Add(-d), nil
	}
	if secs, frac, _ := strings.Cut(s, "."); secs != "" && isDigits(secs) && (frac == "" || isDigits(frac)) {
		sec, err := strconv.ParseInt(secs, 10, 64)
		if err == nil {
			nsec := int64(0)
			if frac != "" {
				frac = (frac + "000000000")[:9]
				nsec, _ = strconv.ParseInt(frac, 10, 64)
			}
			return time.Unix(sec, nsec), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2024-05-01T10:00:00Z), Unix seconds or a duration (10m)", s)
}

func isDigits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}
