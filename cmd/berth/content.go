package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newContentCommand(a *app) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "content",
		Short: "Manage blobs in the content store",
	})
	cmd.AddCommand(
		newContentListCommand(a),
		newContentGetCommand(a),
		newContentRemoveCommand(a),
		newContentLabelCommand(a),
		newContentIngestCommand(a),
		newContentActiveCommand(a),
		newContentAbortCommand(a),
	)
	return cmd
}

func newContentListCommand(a *app) *cobra.Command {
	var (
		out     output
		filters []string
	)
	cmd := &cobra.Command{
		Use:         "ls",
		Aliases:     []string{"list"},
		Short:       "List blobs",
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			blobs, err := a.client.ListBlobs(cmd.Context(), filters...)
			if err != nil {
				return err
			}
			return printBlobs(cmd.OutOrStdout(), out, time.Now(), blobs)
		},
	}
	out.addListFlags(cmd.Flags(), "digest")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "list only blobs matching `FILTER` (fields digest, size, labels.KEY; repeatable, any may match)")
	return cmd
}

func printBlobs(w io.Writer, out output, now time.Time, blobs []client.BlobInfo) error {
	return printList(w, out, blobs,
		func(b client.BlobInfo) string { return b.Digest },
		[]string{"digest", "size", "age", "labels"},
		func(b client.BlobInfo) []string {
			return []string{b.Digest, humanSize(b.Size), relativeTime(now, b.CreatedAt), labelsColumn(b.Labels)}
		})
}

func newContentGetCommand(a *app) *cobra.Command {
	var (
		file         string
		offset, size int64
	)
	cmd := &cobra.Command{
		Use:   "get DIGEST",
		Short: "Write a blob, or part of it, to stdout or a file",
		Args: func(cmd *cobra.Command, args []string) error {
			if offset < 0 || size < 0 {
				return usagef("--offset and --size must not be negative")
			}
			return exactArgs(1)(cmd, args)
		},
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" || file == "-" {
				_, err := a.client.ReadBlob(cmd.Context(), args[0], offset, size, cmd.OutOrStdout())
				return err
			}
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			if _, err := a.client.ReadBlob(cmd.Context(), args[0], offset, size, f); err != nil {
				f.Close()
				os.Remove(file)
				return err
			}
			return f.Close()
		},
	}
	cmd.Flags().StringVarP(&file, "output", "o", "", "write to `FILE` instead of stdout")
	cmd.Flags().Int64Var(&offset, "offset", 0, "start at byte `N`")
	cmd.Flags().Int64Var(&size, "size", 0, "read at most `N` bytes (0: to the end)")
	return cmd
}

func newContentRemoveCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm DIGEST...",
		Aliases: []string{"remove"},
		Short:   "Remove blobs from the namespace, printing each digest removed",
		Long: `Remove blobs from the namespace, printing each digest removed.

The bytes leave the disk at the next garbage collection (berth system prune),
once no namespace holds them.`,
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeEach(cmd, a, args, func(dgst string) error {
				return a.client.DeleteBlob(cmd.Context(), dgst)
			})
		},
	}
}

func newContentLabelCommand(a *app) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:         "label DIGEST KEY=VALUE...",
		Short:       "Set or remove (KEY=) labels of a blob and print its labels",
		Args:        labelArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			labels, err := parseLabels(args[1:], true)
			if err != nil {
				return err
			}
			info, err := a.client.SetBlobLabels(cmd.Context(), args[0], labels)
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(cmd.OutOrStdout(), info)
			}
			return printLabels(cmd.OutOrStdout(), info.Labels)
		},
	}
	out.addFormatFlag(cmd.Flags())
	return cmd
}

func newContentIngestCommand(a *app) *cobra.Command {
	var expected, lease string
	labels := labelsFlag{}
	cmd := &cobra.Command{
		Use:   "ingest REF FILE",
		Short: "Write FILE (- for stdin) into the content store and print its digest",
		Long: `Write FILE (- for stdin) into the content store and print its digest.

REF names the ingest: if an ingest of the same REF was interrupted, it resumes
where the daemon stopped (stdin resumes only when it is a regular file).
If the blob is already present, its digest is printed and the command succeeds.
The blob is labelled berth.io/gc.root, so garbage collection keeps it until
'berth content rm'; with --lease the lease holds it instead (and it goes when
the lease does).`,
		Args:        exactArgs(2),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, name := args[0], args[1]
			in, err := openInput(name, a.stdin)
			if err != nil {
				return err
			}
			defer in.close()
			opts := client.IngestOpts{Ref: ref, Size: in.size, Expected: expected, Labels: labels}
			var p *progress
			if isTerminal(a.stderr) {
				p = &progress{w: a.stderr, total: in.size}
				opts.Progress = p.update
			}
			ctx := cmd.Context()
			if lease != "" {
				ctx = client.WithLease(ctx, lease)
			} else if _, set := labels[client.LabelGCRoot]; !set {
				// Nothing else references a blob stored by hand: keep it
				// until `berth content rm`.
				opts.Labels = map[string]string{client.LabelGCRoot: "berth content ingest"}
				for k, v := range labels {
					opts.Labels[k] = v
				}
			}
			dgst, err := a.client.Ingest(ctx, in.r, opts)
			p.done()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), dgst)
			return err
		},
	}
	cmd.Flags().StringVar(&expected, "expected", "", "fail unless the blob has `DIGEST`")
	cmd.Flags().Var(labels, "label", "set a label on the blob (repeatable)")
	cmd.Flags().StringVar(&lease, "lease", "", "hold the ingest and the blob with lease `ID` (see berth lease create)")
	return cmd
}

// ingestInput is the data of `content ingest`.
type ingestInput struct {
	r     io.Reader // an *os.File when seekable, so the client can resume
	size  int64     // 0 when unknown
	close func()
}

// openInput opens name, or stdin for "-". A regular file is passed on as the
// *os.File itself so the client can seek to resume; anything else is a
// stream.
func openInput(name string, stdin io.Reader) (*ingestInput, error) {
	var r io.Reader = stdin
	closeFn := func() {}
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		r, closeFn = f, func() { f.Close() }
	}
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			return &ingestInput{r: f, size: fi.Size(), close: closeFn}, nil
		}
	}
	// A pipe or terminal cannot seek: hide Seek so the client starts over
	// instead of failing.
	return &ingestInput{r: struct{ io.Reader }{r}, close: closeFn}, nil
}

// progress draws one line of ingest progress, updated in place, on a terminal.
type progress struct {
	w           io.Writer
	total       int64
	start       time.Time
	startOffset int64
	offset      int64
	drawn       time.Time
}

func (p *progress) update(offset int64) {
	now := time.Now()
	if p.start.IsZero() {
		p.start, p.startOffset = now, offset
	}
	p.offset = offset
	if now.Sub(p.drawn) >= 100*time.Millisecond {
		p.draw(now)
	}
}

func (p *progress) draw(now time.Time) {
	p.drawn = now
	fmt.Fprintf(p.w, "\r%s\x1b[K", progressLine(p.offset, p.total, p.offset-p.startOffset, now.Sub(p.start)))
}

// done draws the final state and ends the line; p may be nil.
func (p *progress) done() {
	if p == nil || p.start.IsZero() {
		return
	}
	p.draw(time.Now())
	fmt.Fprintln(p.w)
}

// progressLine renders "12 MiB / 40 MiB  8.3 MiB/s": the offset, the total
// if known, and the rate of the bytes sent in elapsed.
func progressLine(offset, total, sent int64, elapsed time.Duration) string {
	s := humanSize(offset)
	if total > 0 {
		s += " / " + humanSize(total)
	}
	if elapsed > 0 {
		s += "  " + humanSize(int64(float64(sent)/elapsed.Seconds())) + "/s"
	}
	return s
}

func newContentActiveCommand(a *app) *cobra.Command {
	var (
		out     output
		filters []string
	)
	cmd := &cobra.Command{
		Use:         "active",
		Short:       "List ingests in progress",
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ingests, err := a.client.ListIngests(cmd.Context(), filters...)
			if err != nil {
				return err
			}
			return printIngests(cmd.OutOrStdout(), out, time.Now(), ingests)
		},
	}
	out.addListFlags(cmd.Flags(), "ref")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "list only ingests matching `FILTER` (field ref; repeatable, any may match)")
	return cmd
}

func printIngests(w io.Writer, out output, now time.Time, ingests []client.IngestStatus) error {
	return printList(w, out, ingests,
		func(s client.IngestStatus) string { return s.Ref },
		[]string{"ref", "offset", "total", "started"},
		func(s client.IngestStatus) []string {
			total := "-"
			if s.Total > 0 {
				total = humanSize(s.Total)
			}
			return []string{s.Ref, humanSize(s.Offset), total, relativeTime(now, s.StartedAt)}
		})
}

func newContentAbortCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "abort REF...",
		Short:       "Abort ingests in progress, printing each ref aborted",
		Args:        minArgs(1),
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return removeEach(cmd, a, args, func(ref string) error {
				return a.client.AbortIngest(cmd.Context(), ref)
			})
		},
	}
}
