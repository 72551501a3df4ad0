package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// Output formats of --format.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// formatValue is the --format flag; other values are flag (usage) errors.
type formatValue string

func (f *formatValue) String() string { return string(*f) }
func (f *formatValue) Type() string   { return "table|json" }
func (f *formatValue) Set(s string) error {
	switch s {
	case formatTable, formatJSON:
		*f = formatValue(s)
		return nil
	}
	return fmt.Errorf("want %s or %s", formatTable, formatJSON)
}

// output is the choice of the -q and --format flags.
type output struct {
	quiet  bool
	format formatValue
}

func (o *output) json() bool { return o.format == formatJSON }

// addFormatFlag adds --format to fs.
func (o *output) addFormatFlag(fs *pflag.FlagSet) {
	o.format = formatTable
	fs.Var(&o.format, "format", "output format: table or json")
}

// addListFlags adds --format and -q to fs.
func (o *output) addListFlags(fs *pflag.FlagSet, idName string) {
	o.addFormatFlag(fs)
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only the "+idName+"s, one per line")
}

// printList prints items as a JSON array, their ids (-q) or a table with
// the given headers, one row per item.
func printList[T any](w io.Writer, o output, items []T, id func(T) string, headers []string, row func(T) []string) error {
	switch {
	case o.quiet:
		for _, it := range items {
			if _, err := fmt.Fprintln(w, id(it)); err != nil {
				return err
			}
		}
		return nil
	case o.json():
		if items == nil {
			items = []T{}
		}
		return printJSON(w, items)
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	return printTable(w, headers, rows)
}

// printTable prints aligned columns under UPPERCASE headers.
func printTable(w io.Writer, headers []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(headers, "\t")))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// labelsColumn renders labels for a table cell: sorted, comma-separated.
func labelsColumn(labels map[string]string) string {
	return strings.Join(sortedLabels(labels), ",")
}

// humanSize renders n bytes in binary units with at most one decimal:
// "512 B", "1.5 KiB", "3 MiB".
func humanSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n)/1024, 0
	// Move up a unit when rounding to one decimal would print 1024.
	for v >= 1023.95 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + units[i]
}

// known reports whether t is set.
func known(t time.Time) bool { return !t.IsZero() }

// relativeTime renders t relative to now for tables: "3 seconds ago",
// "in 2 hours", "just now", or "-" when t is unset.
func relativeTime(now, t time.Time) string {
	if !known(t) {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d > -time.Second && d < time.Second:
		return "just now"
	case d < 0:
		return "in " + humanDuration(-d)
	default:
		return humanDuration(d) + " ago"
	}
}

// humanDuration renders d in its largest sensible unit: "1 second",
// "5 minutes", "36 hours", "3 days", "2 weeks", "4 months", "1 year".
func humanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d < time.Minute:
		return plural(int64(d/time.Second), "second")
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	case d < 14*day:
		return plural(int64(d/day), "day")
	case d < 60*day:
		return plural(int64(d/(7*day)), "week")
	case d < 365*day:
		return plural(int64(d/(30*day)), "month")
	default:
		return plural(int64(d/(365*day)), "year")
	}
}

// plural renders "1 blob", "0 blobs", "3 blobs".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

// isTerminal reports whether w is a terminal (a character device, not a
// pipe or a file).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
