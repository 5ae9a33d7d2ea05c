package testregistry

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// Credentials are a user name and password for HTTP basic authentication.
type Credentials struct {
	Username, Password string
}

// realm is the basic-auth realm the registry announces.
const realm = "slipway test registry"

// requireAuth wraps a registry handler so that requests for repositories
// under PrivatePrefix need creds: without them, or with others, it answers
// 401 with a basic challenge (which containerd's and go-containerregistry's
// clients answer with the credentials they hold for the host). Every other
// request, including the /v2/ version check, passes through as is, whatever
// credentials it carries.
func requireAuth(next http.Handler, creds Credentials) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/"+PrivatePrefix) && !authorized(r, creds) {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorized reports whether r carries creds.
func authorized(r *http.Request, creds Credentials) bool {
	user, pass, ok := r.BasicAuth()
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(creds.Username)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(creds.Password)) == 1
	return ok && userOK && passOK
}
