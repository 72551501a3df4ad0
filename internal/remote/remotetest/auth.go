package remotetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// grant is what an issued token allows: actions per repository.
type grant struct {
	access  map[string]map[string]bool
	expires time.Time
}

var repoPath = regexp.MustCompile(`^/v2/(.+?)/(?:manifests|blobs|tags)/`)

// authorized checks a request's credentials and, when they fall short,
// answers 401 with a challenge and returns false.
func (r *Registry) authorized(w http.ResponseWriter, req *http.Request) bool {
	switch r.opts.Auth {
	case AuthBasic:
		user, pass, ok := req.BasicAuth()
		if ok && user == r.opts.Username && pass == r.opts.Password {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="remotetest"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return false
	case AuthBearer:
		needs := neededAccess(req)
		tok, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		r.mu.Lock()
		g, ok := r.tokens[tok]
		r.mu.Unlock()
		if ok && time.Now().Before(g.expires) && g.allows(needs) {
			return true
		}
		challenge := fmt.Sprintf(`Bearer realm="%s/token",service="remotetest"`, r.URL)
		var scopes []string
		for repo, action := range needs {
			scopes = append(scopes, "repository:"+repo+":"+action)
		}
		if len(scopes) > 0 {
			challenge += fmt.Sprintf(`,scope="%s"`, strings.Join(scopes, " "))
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return false
	}
	return true
}

// neededAccess is the access a request needs: pull for reads, push for
// writes, and pull on the source of a mount.
func neededAccess(req *http.Request) map[string]string {
	m := repoPath.FindStringSubmatch(req.URL.Path)
	if m == nil {
		return nil
	}
	needs := map[string]string{}
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		needs[m[1]] = "pull"
	} else {
		needs[m[1]] = "push"
	}
	if from := req.URL.Query().Get("from"); from != "" && req.URL.Query().Get("mount") != "" {
		needs[from] = "pull"
	}
	return needs
}

func (g grant) allows(needs map[string]string) bool {
	for repo, action := range needs {
		if !g.access[repo][action] {
			return false
		}
	}
	return true
}

// serveToken is the token service: GET with basic credentials (or
// anonymous when no Username is set), or POST with an OAuth2 refresh
// token. It grants every scope asked for.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.tokenRequests++
	r.mu.Unlock()
	var scopes []string
	switch req.Method {
	case http.MethodGet:
		if r.opts.Username != "" {
			user, pass, ok := req.BasicAuth()
			if !ok || user != r.opts.Username || pass != r.opts.Password {
				writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials")
				return
			}
		}
		for _, s := range req.URL.Query()["scope"] {
			scopes = append(scopes, strings.Fields(s)...)
		}
	case http.MethodPost:
		if err := req.ParseForm(); err != nil || req.PostForm.Get("grant_type") != "refresh_token" ||
			r.opts.RefreshToken == "" || req.PostForm.Get("refresh_token") != r.opts.RefreshToken {
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad refresh token")
			return
		}
		scopes = strings.Fields(req.PostForm.Get("scope"))
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "GET or POST")
		return
	}
	ttl := r.opts.TokenTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	g := grant{access: map[string]map[string]bool{}, expires: time.Now().Add(ttl)}
	for _, s := range scopes {
		parts := strings.Split(s, ":")
		if len(parts) != 3 || parts[0] != "repository" {
			continue
		}
		if g.access[parts[1]] == nil {
			g.access[parts[1]] = map[string]bool{}
		}
		for _, a := range strings.Split(parts[2], ",") {
			g.access[parts[1]][a] = true
			if a == "push" {
				g.access[parts[1]]["pull"] = true
			}
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	r.mu.Lock()
	r.tokens[tok] = g
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":      tok,
		"expires_in": int64((ttl + time.Second - 1) / time.Second),
		"issued_at":  time.Now().UTC().Format(time.RFC3339),
	})
}

// TokenRequests returns how many token requests the token service got.
func (r *Registry) TokenRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tokenRequests
}

// RevokeTokens invalidates every token issued so far.
func (r *Registry) RevokeTokens() {
	r.mu.Lock()
	r.tokens = map[string]grant{}
	r.mu.Unlock()
}
