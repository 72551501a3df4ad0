package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/namespaces"
	"github.com/berth-dev/berth/internal/remote"
	"github.com/berth-dev/berth/internal/remote/remotetest"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// phaseLog records the last phase of each item of a transfer.
type phaseLog struct {
	mu     sync.Mutex
	last   map[string]Phase // by kind + " " + digest
	seen   map[Phase]int    // every phase reported
	offset map[string]int64 // largest offset reported
}

func newPhaseLog() *phaseLog {
	return &phaseLog{last: map[string]Phase{}, seen: map[Phase]int{}, offset: map[string]int64{}}
}

func (l *phaseLog) report(p Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := p.Kind + " " + p.Digest.String()
	l.last[id] = p.Phase
	l.seen[p.Phase]++
	l.offset[id] = max(l.offset[id], p.Offset)
}

// final returns the last phase of every item of kind.
func (l *phaseLog) final(kind string) []Phase {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Phase
	for id, p := range l.last {
		if strings.HasPrefix(id, kind+" ") {
			out = append(out, p)
		}
	}
	return out
}

func allPhases(t *testing.T, got []Phase, want Phase, what string) {
	t.Helper()
	if len(got) == 0 {
		t.Errorf("%s: no items reported", what)
	}
	for _, p := range got {
		if p != want {
			t.Errorf("%s: phases %v, want all %s", what, got, want)
			return
		}
	}
}

// pulled pulls repoTag from e.reg and returns the image's target.
func pulled(t *testing.T, e *env, repoTag string, opts PullOptions) ocispec.Descriptor {
	t.Helper()
	res, err := e.puller.Pull(nsCtx(), e.reg.Host+"/"+repoTag, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Target
}

func layerDigests(t *testing.T, e *env, target ocispec.Descriptor) []digest.Digest {
	t.Helper()
	_, m, err := Manifest(nsCtx(), e.db.ContentStore(), target, remote.DefaultPlatform())
	if err != nil {
		t.Fatal(err)
	}
	out := []digest.Digest{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func TestPushUploadsThenSkipsWhatTheRegistryHas(t *testing.T) {
	e := newEnv(t)
	e.reg.PushImage(t, "app/web:v1", testImage(t))
	target := pulled(t, e, "app/web:v1", PullOptions{})
	dst := remotetest.New(t, remotetest.Options{})
	pusher := NewPusher(e.cfg)
	ctx := nsCtx()
	ref := dst.Host + "/copy/web:v2"

	log := newPhaseLog()
	got, err := pusher.Push(ctx, target, ref, PushOptions{}, log.report)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != target.Digest {
		t.Errorf("pushed %s, want %s", got.Digest, target.Digest)
	}
	allPhases(t, log.final("layer"), PhaseDone, "first push, layers")
	allPhases(t, log.final("config"), PhaseDone, "first push, config")
	if log.seen[PhaseUploading] == 0 || log.seen[PhaseWaiting] == 0 {
		t.Errorf("phases seen %v, want waiting and uploading", log.seen)
	}
	for _, d := range layerDigests(t, e, target) {
		if !dst.HasBlob("copy/web", d) {
			t.Errorf("registry lacks %s", d)
		}
		if n := log.offset["layer "+d.String()] + log.offset["config "+d.String()]; n == 0 {
			t.Errorf("no upload offset reported for %s", d)
		}
	}
	_, desc, err := e.cfg.Remote.Resolve(ctx, mustRef(t, ref))
	if err != nil || desc.Digest != target.Digest {
		t.Fatalf("%s resolves to %+v, %v", ref, desc, err)
	}

	// The second push finds every blob and uploads nothing.
	dst.ResetRequests()
	log = newPhaseLog()
	if _, err := pusher.Push(ctx, target, ref, PushOptions{}, log.report); err != nil {
		t.Fatal(err)
	}
	allPhases(t, log.final("layer"), PhaseExists, "second push, layers")
	allPhases(t, log.final("config"), PhaseExists, "second push, config")
	if n := dst.Count(http.MethodPost, "/blobs/uploads") + dst.Count(http.MethodPatch, "") + dst.Count(http.MethodPut, "/blobs/"); n != 0 {
		t.Errorf("second push uploaded: %v", dst.Requests())
	}
	if log.seen[PhaseUploading] != 1 { // the tag alone is written again
		t.Errorf("second push uploaded %d items, want only the tagged manifest", log.seen[PhaseUploading])
	}

	// The image pulled back by digest from the new registry is the same.
	res, err := e.puller.Pull(namespacesCtx("back"), dst.Host+"/copy/web@"+target.Digest.String(), PullOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Target.Digest != target.Digest {
		t.Errorf("pulled back %s, want %s", res.Target.Digest, target.Digest)
	}
}

func TestPushMountsFromAnotherRepositoryOfTheRegistry(t *testing.T) {
	e := newEnv(t)
	e.reg.PushImage(t, "team/base:v1", remotetest.RandomImage(t, 2, 4096))
	target := pulled(t, e, "team/base:v1", PullOptions{})
	pusher := NewPusher(e.cfg)
	ctx := nsCtx()

	// The pull labelled the blobs with team/base: a push to another
	// repository of the same registry mounts them.
	e.reg.ResetRequests()
	log := newPhaseLog()
	if _, err := pusher.Push(ctx, target, e.reg.Host+"/team/app:v1", PushOptions{}, log.report); err != nil {
		t.Fatal(err)
	}
	allPhases(t, log.final("layer"), PhaseMounted, "layers")
	allPhases(t, log.final("config"), PhaseMounted, "config")
	mounts := 0
	for _, q := range e.reg.Requests() {
		if q.Method == http.MethodPost && strings.Contains(q.RawQuery, "from=team%2Fbase") {
			mounts++
		}
	}
	if mounts != 3 {
		t.Errorf("%d mount requests, want 3", mounts)
	}
	if n := e.reg.Count(http.MethodPut, "/blobs/uploads") + e.reg.Count(http.MethodPatch, ""); n != 0 {
		t.Errorf("%d uploads despite mounts", n)
	}
	for _, d := range layerDigests(t, e, target) {
		if !e.reg.HasBlob("team/app", d) {
			t.Errorf("team/app lacks %s", d)
		}
		info, err := e.db.ContentStore().Info(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Labels[LabelDistributionSourcePrefix+e.reg.Host]; got != "team/base,team/app" {
			t.Errorf("source label of %s = %q", d, got)
		}
	}

	// A second registry: the first push uploads, a push to a second
	// repository there mounts from the first.
	other := remotetest.New(t, remotetest.Options{})
	if _, err := pusher.Push(ctx, target, other.Host+"/one:v1", PushOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	log = newPhaseLog()
	if _, err := pusher.Push(ctx, target, other.Host+"/two:v1", PushOptions{}, log.report); err != nil {
		t.Fatal(err)
	}
	allPhases(t, log.final("layer"), PhaseMounted, "second registry, layers")
}

func TestPushPlatformOfAnIndex(t *testing.T) {
	e := newEnv(t)
	idxDesc := e.reg.PushIndex(t, "multi:v1", remotetest.Index(t, "linux/amd64", "linux/arm64/v8"))
	target := pulled(t, e, "multi:v1", PullOptions{Platform: "linux/arm64/v8"})
	dst := remotetest.New(t, remotetest.Options{})
	pusher := NewPusher(e.cfg)
	ctx := nsCtx()

	// Only arm64's content is here: the whole index cannot be pushed.
	_, err := pusher.Push(ctx, target, dst.Host+"/multi:all", PushOptions{}, nil)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "linux/amd64") || !strings.Contains(err.Error(), "--platform") {
		t.Errorf("push of a partial index: %v", err)
	}
	if n := dst.Count(http.MethodPost, ""); n != 0 {
		t.Errorf("a push that could not complete started %d uploads", n)
	}

	got, err := pusher.Push(ctx, target, dst.Host+"/multi:arm", PushOptions{Platform: "linux/arm64/v8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, desc, err := e.cfg.Remote.Resolve(ctx, mustRef(t, dst.Host+"/multi:arm"))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != got.Digest || !remote.IsManifest(desc.MediaType) || got.Digest == idxDesc.Digest {
		t.Errorf("multi:arm is %+v, pushed %+v; want the arm64 manifest", desc, got)
	}
	if _, err := pusher.Push(ctx, target, dst.Host+"/multi:s390x", PushOptions{Platform: "linux/s390x"}, nil); !errdefs.IsNotFound(err) {
		t.Errorf("push of a platform the index lacks: %v", err)
	}

	// With every platform pulled, the index goes whole, manifests first.
	pulled(t, e, "multi:v1", PullOptions{Platform: "linux/arm64/v8", AllPlatforms: true})
	dst.ResetRequests()
	got, err = pusher.Push(ctx, target, dst.Host+"/multi:all", PushOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != idxDesc.Digest {
		t.Errorf("pushed %s, want the index %s", got.Digest, idxDesc.Digest)
	}
	var puts []string
	for _, q := range dst.Requests() {
		if q.Method == http.MethodPut && strings.Contains(q.Path, "/manifests/") {
			puts = append(puts, q.Path[strings.LastIndex(q.Path, "/")+1:])
		}
	}
	if len(puts) != 2 || puts[len(puts)-1] != "all" { // arm64's manifest is there already
		t.Errorf("manifest PUTs %v, want amd64's manifest then the tag", puts)
	}
}

func TestPushNeverWritesToAPullOnlyMirror(t *testing.T) {
	e := newEnv(t)
	e.reg.PushImage(t, "app:v1", remotetest.RandomImage(t, 1, 2048))
	target := pulled(t, e, "app:v1", PullOptions{})
	server := remotetest.New(t, remotetest.Options{})
	mirror := remotetest.New(t, remotetest.Options{})
	writeHosts(t, e.hostsDir, server.Host, fmt.Sprintf("server = %q\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", server.URL, mirror.URL))

	ctx := nsCtx()
	if _, err := NewPusher(e.cfg).Push(ctx, target, server.Host+"/app:v1", PushOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if reqs := mirror.Requests(); len(reqs) != 0 {
		t.Errorf("the pull-only mirror received %d requests: %+v", len(reqs), reqs)
	}
	for _, d := range layerDigests(t, e, target) {
		if !server.HasBlob("app", d) {
			t.Errorf("server lacks %s", d)
		}
	}
	// Pulls do use the mirror: it lacks the image, so they fall through
	// to the server.
	if _, err := e.puller.Pull(namespacesCtx("again"), server.Host+"/app:v1", PullOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if len(mirror.Requests()) == 0 {
		t.Error("the pull did not try the mirror first")
	}
}

func TestPushAndPullCarryCallCredentialsOnly(t *testing.T) {
	e := newEnv(t)
	e.reg.PushImage(t, "app:v1", remotetest.RandomImage(t, 1, 2048))
	target := pulled(t, e, "app:v1", PullOptions{})
	priv := remotetest.New(t, remotetest.Options{Auth: remotetest.AuthBearer, Username: "alice", Password: "s3cret"})
	pusher := NewPusher(e.cfg)
	ctx := nsCtx()
	ref := priv.Host + "/private/app:v1"
	good := remote.Auth{Username: "alice", Password: "s3cret"}

	_, err := pusher.Push(ctx, target, ref, PushOptions{}, nil)
	if !remote.IsUnauthorized(err) || !strings.Contains(err.Error(), "no credentials were sent for "+priv.Host) {
		t.Errorf("anonymous push: %v", err)
	}
	if _, err := pusher.Push(ctx, target, ref, PushOptions{Auth: remote.Auth{Username: "alice", Password: "wrong"}}, nil); !remote.IsUnauthorized(err) || !strings.Contains(err.Error(), `refused the credentials of "alice"`) {
		t.Errorf("push with a wrong password: %v", err)
	}
	if _, err := pusher.Push(ctx, target, ref, PushOptions{Auth: good}, nil); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}

	// One call's credentials never serve another: anonymous and wrong
	// pulls still fail after a good one, and record nothing.
	if _, err := e.puller.Pull(namespacesCtx("priv"), ref, PullOptions{Auth: good}, nil); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
	for _, auth := range []remote.Auth{{}, {Username: "alice", Password: "wrong"}} {
		ns := namespacesCtx("anon")
		if _, err := e.puller.Pull(ns, ref, PullOptions{Auth: auth}, nil); !remote.IsUnauthorized(err) {
			t.Errorf("pull with %+v after a good one: %v", auth, err)
		}
		if _, err := e.db.GetImage(ns, ref); !errdefs.IsNotFound(err) {
			t.Errorf("image recorded by a refused pull: %v", err)
		}
	}
}

// observed records an Observer's calls.
type observed struct {
	mu       sync.Mutex
	inFlight map[string]int
	bytes    map[string]int64
	reasons  []string
}

func (o *observed) TransferStarted(op string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inFlight[op]++
}

func (o *observed) TransferBytes(op string, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bytes[op] += n
}

func (o *observed) TransferFinished(op string, _ time.Duration, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.inFlight[op]--
	o.reasons = append(o.reasons, op+":"+reason)
}

func TestTransfersAreObserved(t *testing.T) {
	e := newEnv(t)
	obs := &observed{inFlight: map[string]int{}, bytes: map[string]int64{}}
	e.cfg.Observer = obs
	puller, pusher := New(e.cfg), NewPusher(e.cfg)
	img := remotetest.RandomImage(t, 2, 64<<10)
	e.reg.PushImage(t, "app:v1", img)
	ctx := nsCtx()
	res, err := puller.Pull(ctx, e.reg.Host+"/app:v1", PullOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	size, err := img.Size()
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := Manifest(ctx, e.db.ContentStore(), res.Target, remote.DefaultPlatform())
	if err != nil {
		t.Fatal(err)
	}
	if want := Size(m) + size; obs.bytes[OpPull] != want {
		t.Errorf("pull bytes %d, want %d (blobs and manifest)", obs.bytes[OpPull], want)
	}
	if _, err := puller.Pull(ctx, e.reg.Host+"/app:nope", PullOptions{}, nil); !errdefs.IsNotFound(err) {
		t.Fatalf("pull of a missing tag: %v", err)
	}
	dst := remotetest.New(t, remotetest.Options{})
	if _, err := pusher.Push(ctx, res.Target, dst.Host+"/app:v1", PushOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if want := Size(m) + size; obs.bytes[OpPush] != want {
		t.Errorf("push bytes %d, want %d", obs.bytes[OpPush], want)
	}
	priv := remotetest.New(t, remotetest.Options{Auth: remotetest.AuthBasic, Username: "u", Password: "p"})
	if _, err := pusher.Push(ctx, res.Target, priv.Host+"/app:v1", PushOptions{}, nil); err == nil {
		t.Fatal("anonymous push to a private registry succeeded")
	}
	want := []string{"pull:", "pull:not_found", "push:", "push:unauthorized"}
	if fmt.Sprint(obs.reasons) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v", obs.reasons, want)
	}
	if obs.inFlight[OpPull] != 0 || obs.inFlight[OpPush] != 0 {
		t.Errorf("in flight after all returned: %v", obs.inFlight)
	}
}

func mustRef(t *testing.T, s string) remote.Reference {
	t.Helper()
	ref, err := remote.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// namespacesCtx is a context for namespace ns.
func namespacesCtx(ns string) context.Context {
	return namespaces.WithNamespace(context.Background(), ns)
}

// writeHosts writes dir/registry/hosts.toml.
func writeHosts(t *testing.T, dir, registry, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, registry), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, registry, "hosts.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
