// Command testimage builds berth's test images and pushes them to a
// registry over plain HTTP (a loopback docker-registry, as the bench and the
// demo start one):
//
//	go run ./hack/testimage [-registry 127.0.0.1:5000] [-seed 1] [-fetch-index] IMAGE...
//
// IMAGE is one of:
//
//	busybox     one layer: Debian's /bin/busybox (package busybox-static), applet
//	            symlinks, /etc/passwd and /etc/group, like testutil.BusyboxImage
//	multilayer  6 gzip layers, about 300 MB uncompressed: large binary-like and
//	            random files, many medium files, text that compresses well,
//	            symlinks, hard links and a whiteout
//	smallfiles  one gzip layer of 50 000 small files in a tree
//
// Each image goes to REGISTRY/IMAGE:latest. With -fetch-index it also goes,
// under a foreign platform, into REGISTRY/IMAGE:fetch, an index whose
// manifest for this host is a one-file image, pushed alone as
// REGISTRY/IMAGE:fetch-stub. Once the stub is pulled, `berth pull
// --all-platforms` of the index fetches the whole image and unpacks
// nothing, which is how the bench times fetching alone.
//
// The content is deterministic: the same seed gives the same digests, so a
// rerun uploads nothing new. For each reference pushed, testimage prints the
// reference and its manifest (or index) digest on one line.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	registry := flag.String("registry", "127.0.0.1:5000", "registry `HOST:PORT`, spoken to over plain HTTP")
	seed := flag.Uint64("seed", 1, "seed of the generated content")
	fetchIndex := flag.Bool("fetch-index", false, "also push IMAGE:fetch, an index for timing fetches alone")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: testimage [flags] busybox|multilayer|smallfiles...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	for _, image := range flag.Args() {
		if err := run(*registry, image, *seed, *fetchIndex); err != nil {
			fmt.Fprintf(os.Stderr, "testimage: %s: %v\n", image, err)
			os.Exit(1)
		}
	}
}

func run(registry, image string, seed uint64, fetchIndex bool) error {
	var layers []layerFunc
	switch image {
	case "busybox":
		l, err := busyboxLayer()
		if err != nil {
			return err
		}
		layers = []layerFunc{l}
	case "multilayer":
		layers = multilayer
	case "smallfiles":
		layers = []layerFunc{smallfiles}
	default:
		return fmt.Errorf("unknown image (want busybox, multilayer or smallfiles)")
	}
	img, err := buildImage(image, layers, seed)
	if err != nil {
		return err
	}
	if err := push(registry+"/"+image+":latest", img); err != nil || !fetchIndex {
		return err
	}
	stub, err := buildImage("stub", []layerFunc{func(w *layerWriter) { w.file("stub", 0644, 16, text) }}, seed)
	if err != nil {
		return err
	}
	if err := push(registry+"/"+image+":fetch-stub", stub); err != nil {
		return err
	}
	foreign := "s390x"
	if runtime.GOARCH == foreign {
		foreign = "ppc64le"
	}
	return push(registry+"/"+image+":fetch", mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: stub, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: foreign}}},
	))
}

// manifest is an image or an index.
type manifest interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}

// push writes m to ref, a reference to a plain-HTTP registry, and prints
// ref and m's digest.
func push(ref string, m manifest) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Push(r, m); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := m.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Println(ref, d)
	return err
}
