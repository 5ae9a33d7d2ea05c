// Command app is the Go program the builder benchmark (hack/bench/build.sh)
// builds and runs: a small JSON web server. LISTEN (default
// 127.0.0.1:8080) is where it listens; the benchmark's host-network pods
// use 127.0.0.1:0 so that no two runs contend for a port.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
)

// greeting is the line the benchmark edits between builds.
var greeting = "hello"

func main() {
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"greeting": greeting, "path": r.URL.Path})
	})
	log.Fatal(http.ListenAndServe(addr, nil))
}
