package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/client"
)

// progressView shows the progress of a pull or push: one live line per
// item on a terminal, like docker pull and push, or a plain line per phase
// change otherwise.
type progressView struct {
	w        io.Writer
	tty      bool
	order    []string
	items    map[string]*progressItem
	drawn    int
	lastDraw time.Time
}

type progressItem struct {
	client.PullProgress
	started time.Time
	startAt int64
}

func newProgressView(w io.Writer, tty bool) *progressView {
	return &progressView{w: w, tty: tty, items: map[string]*progressItem{}}
}

// updatePush shows a push report (the same fields as a pull's).
func (v *progressView) updatePush(p client.PushProgress) { v.update(client.PullProgress(p)) }

// update shows a pull report.
func (v *progressView) update(p client.PullProgress) {
	id := p.Kind + " " + p.Digest
	it, ok := v.items[id]
	if !ok {
		it = &progressItem{}
		v.items[id] = it
		v.order = append(v.order, id)
	}
	changed := it.Phase != p.Phase
	if transferring(p.Phase) && it.started.IsZero() {
		it.started, it.startAt = time.Now(), p.Offset
	}
	it.PullProgress = p
	if !v.tty {
		if changed && p.Digest != "" {
			fmt.Fprintf(v.w, "%s %s: %s\n", p.Kind, shortDigest(p.Digest), p.Phase)
		}
		return
	}
	if changed || time.Since(v.lastDraw) > 100*time.Millisecond {
		v.draw()
	}
}

// transferring reports whether phase moves bytes (and gets a bar).
func transferring(phase string) bool { return phase == "downloading" || phase == "uploading" }

func (v *progressView) draw() {
	if !v.tty {
		return
	}
	v.lastDraw = time.Now()
	if v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA", v.drawn)
	}
	v.drawn = 0
	for _, id := range v.order {
		it := v.items[id]
		if it.Digest == "" {
			continue
		}
		fmt.Fprintf(v.w, "\x1b[2K%s\n", itemLine(it.PullProgress, it.started, it.startAt, time.Now()))
		v.drawn++
	}
}

// finish draws the final state.
func (v *progressView) finish() { v.draw() }

// itemLine renders one item: "layer 3f4e5d6a7b8c  downloading [=====>    ]  12.0 MiB / 40.0 MiB  8.0 MiB/s".
func itemLine(p client.PullProgress, started time.Time, startAt int64, now time.Time) string {
	line := fmt.Sprintf("%-8s %s  %-11s", p.Kind, shortDigest(p.Digest), p.Phase)
	if !transferring(p.Phase) || p.Total <= 0 {
		return line
	}
	const width = 30
	filled := int(float64(width) * float64(p.Offset) / float64(p.Total))
	filled = min(max(filled, 0), width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	line += fmt.Sprintf(" [%s] %9s / %-9s", bar, humanSize(p.Offset), humanSize(p.Total))
	if secs := now.Sub(started).Seconds(); secs > 0.2 {
		line += fmt.Sprintf(" %s/s", humanSize(int64(float64(p.Offset-startAt)/secs)))
	}
	return line
}
