package remote

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStayLeaf keeps remote a leaf package (see the package doc):
// the standard library, errdefs, log, the OCI specs, go-toml,
// go-containerregistry and the Docker CLI's config file package (which
// go-containerregistry's authn reads config.json with) only; and remotetest
// never imports remote.
func TestImportsStayLeaf(t *testing.T) {
	allowed := []string{
		"github.com/berth-dev/berth/internal/errdefs",
		"github.com/berth-dev/berth/internal/log",
		"github.com/opencontainers/go-digest",
		"github.com/opencontainers/image-spec/",
		"github.com/pelletier/go-toml/v2",
		"github.com/google/go-containerregistry/",
		"github.com/docker/cli/cli/config",
	}
	for _, dir := range []string{".", "remotetest"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if !strings.Contains(strings.Split(path, "/")[0], ".") {
					continue // standard library
				}
				ok := false
				for _, a := range allowed {
					ok = ok || path == a || strings.HasPrefix(path, a+"/") || (strings.HasSuffix(a, "/") && strings.HasPrefix(path, a))
				}
				if !ok || (dir == "remotetest" && path == "github.com/berth-dev/berth/internal/remote") {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}
