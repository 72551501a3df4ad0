package contenttest

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/labels"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencontainers/go-digest"
)

var labelCases = []testCase{
	{"CommitLabels", testCommitLabels},
	{"UpdateAllLabels", testUpdateAllLabels},
	{"UpdateOneLabel", testUpdateOneLabel},
	{"UpdateErrors", testUpdateErrors},
	{"WalkLabelFilters", testWalkLabelFilters},
	{"OversizedLabel", testOversizedLabel},
}

// wantLabels fails t unless Info and Walk report labels for dgst.
func wantLabels(t *testing.T, s content.Manager, dgst digest.Digest, want map[string]string) {
	t.Helper()
	ctx := testContext(t)
	info, err := s.Info(ctx, dgst)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if diff := cmp.Diff(want, info.Labels, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Info(%s).Labels mismatch (-want +got):\n%s", dgst, diff)
	}
	found := false
	err = s.Walk(ctx, func(info content.Info) error {
		if info.Digest != dgst {
			return nil
		}
		found = true
		if diff := cmp.Diff(want, info.Labels, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Walk: labels of %s mismatch (-want +got):\n%s", dgst, diff)
		}
		return nil
	})
	if err != nil || !found {
		t.Errorf("Walk: found %s: %v, error %v", dgst, found, err)
	}
}

// update calls Update or fails t, and checks that it returns the labels
// Info reports afterwards.
func update(t *testing.T, s content.Manager, info content.Info, fieldpaths ...string) content.Info {
	t.Helper()
	got, err := s.Update(testContext(t), info, fieldpaths...)
	if err != nil {
		t.Fatalf("Update(%v, %q): %v", info.Labels, fieldpaths, err)
	}
	if got.Digest != info.Digest {
		t.Errorf("Update returned digest %s, want %s", got.Digest, info.Digest)
	}
	wantLabels(t, s, info.Digest, got.Labels)
	return got
}

func testCommitLabels(t *testing.T, factory Factory) {
	s := newStore(t, factory)
	want := map[string]string{"a": "1", "berth.io/gc.ref.content": "sha256:x"}
	dgst := commitBlob(t, s, "labelled", randomBytes(30, 1000), want)
	wantLabels(t, s, dgst, want)
	plain := commitBlob(t, s, "plain", randomBytes(31, 1000), nil)
	wantLabels(t, s, plain, nil)
}

func testUpdateAllLabels(t *testing.T, factory Factory) {
	s := newStore(t, factory)
	dgst := commitBlob(t, s, "all", randomBytes(32, 1000), map[string]string{"a": "1", "b": "2"})

	want := map[string]string{"c": "3"}
	got := update(t, s, content.Info{Digest: dgst, Labels: want}, "labels")
	if diff := cmp.Diff(want, got.Labels); diff != "" {
		t.Errorf("Update(labels) mismatch (-want +got):\n%s", diff)
	}
	got = update(t, s, content.Info{Digest: dgst}, "labels")
	if len(got.Labels) != 0 {
		t.Errorf("Update(labels) with no labels left %v", got.Labels)
	}
}

func testUpdateOneLabel(t *testing.T, factory Factory) {
	s := newStore(t, factory)
	dgst := commitBlob(t, s, "one", randomBytes(33, 1000), map[string]string{"a": "1", "b": "2"})

	got := update(t, s, content.Info{Digest: dgst, Labels: map[string]string{"b": "20", "z": "ignored"}}, "labels.b")
	if diff := cmp.Diff(map[string]string{"a": "1", "b": "20"}, got.Labels); diff != "" {
		t.Errorf("Update(labels.b) mismatch (-want +got):\n%s", diff)
	}
	got = update(t, s, content.Info{Digest: dgst, Labels: map[string]string{"c.d": "3"}}, "labels.c.d")
	if diff := cmp.Diff(map[string]string{"a": "1", "b": "20", "c.d": "3"}, got.Labels); diff != "" {
		t.Errorf("Update(labels.c.d) mismatch (-want +got):\n%s", diff)
	}
	got = update(t, s, content.Info{Digest: dgst}, "labels.a")
	if diff := cmp.Diff(map[string]string{"b": "20", "c.d": "3"}, got.Labels); diff != "" {
		t.Errorf("Update(labels.a) removing a label mismatch (-want +got):\n%s", diff)
	}
}

func testUpdateErrors(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	want := map[string]string{"a": "1"}
	dgst := commitBlob(t, s, "errors", randomBytes(34, 1000), want)

	_, err := s.Update(ctx, content.Info{Digest: digest.FromString("absent"), Labels: want}, "labels")
	wantErr(t, "Update of an absent blob", err, errdefs.ErrNotFound)
	_, err = s.Update(ctx, content.Info{Digest: "sha256:../../x", Labels: want}, "labels")
	wantErr(t, "Update with an invalid digest", err, errdefs.ErrInvalidArgument)
	_, err = s.Update(ctx, content.Info{Digest: dgst, Size: 1}, "size")
	wantErr(t, "Update of the size", err, errdefs.ErrInvalidArgument)
	wantLabels(t, s, dgst, want)
}

func testWalkLabelFilters(t *testing.T, factory Factory) {
	s := newStore(t, factory)
	front := commitBlob(t, s, "front", randomBytes(35, 100), map[string]string{"tier": "front", "berth.io/gc.root": "x"})
	back := commitBlob(t, s, "back", randomBytes(36, 100), map[string]string{"tier": "back"})
	none := commitBlob(t, s, "none", randomBytes(37, 100), nil)

	tests := []struct {
		filters []string
		want    []digest.Digest
	}{
		{[]string{"labels.tier==front"}, []digest.Digest{front}},
		{[]string{"labels.tier"}, []digest.Digest{front, back}},
		{[]string{"labels.tier!=front"}, []digest.Digest{back, none}},
		{[]string{"labels.tier~=^b"}, []digest.Digest{back}},
		{[]string{`labels."berth.io/gc.root"`}, []digest.Digest{front}},
		{[]string{"labels.tier==back", "labels.tier==front"}, []digest.Digest{front, back}},
		{[]string{"labels.tier==front,digest==" + back.String()}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, walkDigests(t, s, tt.filters...), sortDigests, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Walk(%q) mismatch (-want +got):\n%s", tt.filters, diff)
		}
	}
}

func testOversizedLabel(t *testing.T, factory Factory) {
	ctx := testContext(t)
	s := newStore(t, factory)
	fits := map[string]string{"k": strings.Repeat("v", labels.MaxSize-1)}
	tooBig := map[string]string{"k": strings.Repeat("v", labels.MaxSize)}

	data := randomBytes(38, 1000)
	w := openWriter(t, s, content.WriterOpts{Ref: "oversized"})
	writeChunks(t, w, data, 1000)
	err := w.Commit(ctx, int64(len(data)), digest.FromBytes(data), tooBig)
	wantErr(t, "Commit with an oversized label", err, errdefs.ErrInvalidArgument)
	w.Close()

	dgst := commitBlob(t, s, "fits", randomBytes(39, 1000), fits)
	wantLabels(t, s, dgst, fits)
	_, err = s.Update(ctx, content.Info{Digest: dgst, Labels: tooBig}, "labels")
	wantErr(t, "Update(labels) with an oversized label", err, errdefs.ErrInvalidArgument)
	_, err = s.Update(ctx, content.Info{Digest: dgst, Labels: tooBig}, "labels.k")
	wantErr(t, "Update(labels.k) with an oversized label", err, errdefs.ErrInvalidArgument)
	wantLabels(t, s, dgst, fits)
}
