package testregistry

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// testCreds protect the fixture registry's private repositories.
var testCreds = Credentials{Username: "slipway", Password: "s3cret"}

// fixture is one registry serving the built set, shared by the tests of this
// binary so the set is built once; TestMain closes it.
var fixture struct {
	once sync.Once
	srv  *Server
	err  error
}

// testServer returns the shared registry, starting it on first use.
func testServer(t *testing.T) *Server {
	t.Helper()
	fixture.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		fixture.srv, fixture.err = Start(ctx, Options{Auth: &testCreds})
	})
	if fixture.err != nil {
		t.Fatalf("starting the test registry: %v", fixture.err)
	}
	return fixture.srv
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.srv != nil {
		if err := fixture.srv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing the test registry:", err)
			code = 1
		}
	}
	os.Exit(code)
}
