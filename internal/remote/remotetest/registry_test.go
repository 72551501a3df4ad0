package remotetest

import (
	"io"
	"net/http"
	"testing"
)

func TestBlobsAreScopedToRepositoriesAndMountable(t *testing.T) {
	r := New(t, Options{})
	d := r.PutBlob(t, "a", []byte("hello"))
	if !r.HasBlob("a", d) || r.HasBlob("b", d) {
		t.Fatal("blob not scoped to its repository")
	}
	get := func(path string) int {
		t.Helper()
		resp, err := http.Head(r.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/v2/a/blobs/"+d.String()) != http.StatusOK || get("/v2/b/blobs/"+d.String()) != http.StatusNotFound {
		t.Error("HEAD does not follow the repository")
	}
	resp, err := http.Post(r.URL+"/v2/b/blobs/uploads/?mount="+d.String()+"&from=a", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !r.HasBlob("b", d) {
		t.Errorf("mount: %d", resp.StatusCode)
	}
}

func TestFaultTimes(t *testing.T) {
	r := New(t, Options{})
	r.PutBlob(t, "a", []byte("x"))
	r.Inject(Fault{Path: "/tags/", Times: 2, Action: Status(http.StatusBadGateway)})
	var codes []int
	for range 3 {
		resp, err := http.Get(r.URL + "/v2/a/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	// The registry knows no tags for a repository without manifests.
	if codes[0] != http.StatusBadGateway || codes[1] != http.StatusBadGateway || codes[2] == http.StatusBadGateway {
		t.Errorf("codes %v", codes)
	}
	if r.Count(http.MethodGet, "/tags/list") != 3 {
		t.Errorf("count %d", r.Count(http.MethodGet, "/tags/list"))
	}
}

func TestBearerTokenService(t *testing.T) {
	r := New(t, Options{Auth: AuthBearer, Username: "u", Password: "p"})
	resp, err := http.Get(r.URL + "/v2/a/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `Bearer realm="` + r.URL + `/token",service="remotetest",scope="repository:a:pull"`
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Errorf("challenge %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest(http.MethodGet, r.URL+"/token?service=remotetest&scope=repository:a:pull", nil)
	req.SetBasicAuth("u", "wrong")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || r.TokenRequests() != 1 {
		t.Errorf("bad password: %d", resp.StatusCode)
	}
}
