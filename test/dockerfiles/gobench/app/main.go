package main

import (
	"encoding/json"
	"log"
	"net/http"
)

var greeting = "hello"

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"greeting": greeting, "path": r.URL.Path})
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", nil))
}
